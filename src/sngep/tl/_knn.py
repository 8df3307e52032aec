"""The gene kNN graph that Leiden reads: exact neighbours and UMAP's fuzzy connectivities.

What :func:`scanpy.pp.neighbors` computes with its defaults (``method='umap'``, Euclidean,
exact neighbours below 8,192 rows), written in numpy: scanpy hands the connectivities to
UMAP's numba kernels, whose just-in-time compilation took 5-8 s at the first call of every
process (most of a 500-gene Leiden start, issue 11). The weights agree with scanpy's to
float32 rounding (``tests/tl/test_gene_level.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_MIN_SCALE = 1e-3  # UMAP's MIN_K_DIST_SCALE: a floor on each point's bandwidth
_TOL = 1e-5  # UMAP's SMOOTH_K_TOLERANCE


def knn(x: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean ``n_neighbors`` nearest rows of ``x``, each row itself first.

    Returns ``(indices, distances)``, both ``(n, n_neighbors)``; column 0 is the row itself
    at distance exactly 0 (as scanpy sets it), the rest in increasing distance.
    """
    from sklearn.neighbors import NearestNeighbors

    n = x.shape[0]
    found = NearestNeighbors(n_neighbors=n_neighbors - 1, algorithm="brute").fit(x)
    dist, idx = found.kneighbors()  # without the query point itself
    return (
        np.hstack([np.arange(n)[:, None], idx]),
        np.hstack([np.zeros((n, 1)), dist]),
    )


def _bandwidths(dist: np.ndarray, n_iter: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's ``rho`` (distance to the nearest neighbour at a positive distance) and
    ``sigma``: ``sum_j exp(-max(0, d_ij - rho_i) / sigma_i) = log2(k)`` over the neighbours
    but the first, solved by bisection for every point at once (McInnes et al. 2018, 3.1)."""
    n, k = dist.shape
    positive = np.where(dist > 0, dist, np.inf)
    rho = positive.min(axis=1)
    rho = np.where(np.isfinite(rho), rho, 0.0).astype(np.float32)
    excess = (dist[:, 1:] - rho[:, None]).astype(np.float64)
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    open_ = np.ones(n, dtype=bool)
    for _ in range(n_iter):
        psum = np.where(excess > 0, np.exp(-excess / mid[:, None]), 1.0).sum(axis=1)
        open_ &= np.abs(psum - target) >= _TOL
        if not open_.any():
            break
        high = open_ & (psum > target)
        low = open_ & ~high
        hi[high] = mid[high]
        lo[low] = mid[low]
        mid[high] = 0.5 * (lo[high] + hi[high])
        grow = low & np.isinf(hi)
        mid[grow] *= 2.0
        mid[low & ~grow] = 0.5 * (lo[low & ~grow] + hi[low & ~grow])
    floor = np.where(rho > 0, dist.mean(axis=1), dist.mean()) * _MIN_SCALE
    return rho, np.maximum(mid, floor)


def fuzzy_connectivities(indices: np.ndarray, distances: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy union of the kNN graph (``local_connectivity=1``,
    ``set_op_mix_ratio=1``): ``P + P^T - P o P^T`` with
    ``P_ij = exp(-max(0, d_ij - rho_i) / sigma_i)`` and no self loops."""
    n, k = indices.shape
    d = np.asarray(distances, dtype=np.float32)
    rho, sigma = _bandwidths(d)
    excess = d - rho[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where((excess <= 0) | (sigma[:, None] == 0), 1.0, np.exp(-excess / sigma[:, None]))
    val[indices == np.arange(n)[:, None]] = 0.0
    p = sp.csr_matrix((val.ravel(), (np.repeat(np.arange(n), k), indices.ravel())), shape=(n, n))
    p.eliminate_zeros()
    out = (p + p.T - p.multiply(p.T)).tocsr()
    out.eliminate_zeros()
    return out


def connectivities(x: np.ndarray, n_neighbors: int) -> sp.csr_matrix:
    """The ``(n, n)`` weighted kNN graph of the rows of ``x`` that scanpy's default
    ``neighbors`` would give (:func:`knn` then :func:`fuzzy_connectivities`)."""
    return fuzzy_connectivities(*knn(np.asarray(x, dtype=np.float64), n_neighbors))
