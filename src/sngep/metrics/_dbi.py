"""Davies-Bouldin index, Euclidean (DBIE) and Pearson (DBIP) distances (main text 4.1.6, eq. 26)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from sngep.metrics._common import cluster_means, prepare


def dbi_euclidean(images: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    """Davies-Bouldin index with Euclidean distance (DBIE); lower is better.

    Eq. 26 of the main text: ``DBI = 1/K sum_i max_{j != i} (d_i + d_j) / d_ij`` with
    centroids ``c_i`` the mean image of cluster ``i``, ``d_i`` the mean Euclidean distance of
    its members to ``c_i`` and ``d_ij = ||c_i - c_j||``. Computed on the gene images, a space
    every clustering method shares. Equals :func:`sklearn.metrics.davies_bouldin_score` on
    the flattened (masked) images, including its conventions: pairs of clusters with
    identical centroids are skipped, and the index is 0 when every ``d_i`` or every ``d_ij``
    is 0.

    Parameters
    ----------
    images
        ``(N, H, W)`` or ``(N, P)`` array, one image per gene (e.g.
        ``adata.varm['gene_images']``).
    labels
        ``N`` cluster labels (ints, strings or a pandas Categorical); at least 2 clusters.
    mask
        Boolean ``(H, W)`` (or ``(P,)``) mask: only these pixels are used, e.g. the tissue
        mask ``adata.uns['gene_images']['mask']``.

    Returns
    -------
    The index (float).
    """
    x, codes, uniques = prepare(images, labels, mask)
    k = _check_clusters(uniques)
    centroids = cluster_means(x, codes, k)
    intra = np.bincount(codes, weights=np.linalg.norm(x - centroids[codes], axis=1), minlength=k)
    intra /= np.bincount(codes, minlength=k)
    sq = np.sum(centroids**2, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * centroids @ centroids.T
    between = np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(between, 0.0)
    return _davies_bouldin(intra, between)


def dbi_pearson(images: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None) -> float:
    """Davies-Bouldin index with Pearson distance ``1 - r`` (DBIP); lower is better.

    As :func:`dbi_euclidean` with ``delta(a, b) = 1 - pearson_r(a, b)`` over the pixels:
    centroids are the mean images of the clusters, ``d_i`` is the mean of
    ``1 - r(member, c_i)`` over the members of cluster ``i`` and ``d_ij = 1 - r(c_i, c_j)``.
    A constant image (e.g. all zero) has no defined correlation; it counts as ``r = 0``
    (distance 1). Same conventions as :func:`dbi_euclidean` for zero distances.

    Parameters
    ----------
    images
        ``(N, H, W)`` or ``(N, P)`` array, one image per gene.
    labels
        ``N`` cluster labels; at least 2 clusters.
    mask
        Boolean ``(H, W)`` (or ``(P,)``) mask of the pixels to use.

    Returns
    -------
    The index (float).
    """
    x, codes, uniques = prepare(images, labels, mask)
    k = _check_clusters(uniques)
    centroids = _unit_centred(cluster_means(x, codes, k))
    xs = _unit_centred(x)
    r_member = np.einsum("ij,ij->i", xs, centroids[codes])
    intra = np.bincount(codes, weights=1.0 - r_member, minlength=k)
    intra /= np.bincount(codes, minlength=k)
    between = 1.0 - np.clip(centroids @ centroids.T, -1.0, 1.0)
    np.fill_diagonal(between, 0.0)
    return _davies_bouldin(intra, between)


def _unit_centred(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (zero rows stay zero, giving r = 0)."""
    xc = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(xc, axis=1)
    scale = np.abs(x).max(axis=1)
    const = norm <= 1e-12 * np.maximum(scale, np.finfo(float).tiny) * np.sqrt(x.shape[1])
    norm[const] = np.inf
    return xc / norm[:, None]


def _check_clusters(uniques: np.ndarray) -> int:
    k = len(uniques)
    if k < 2:
        msg = f"the Davies-Bouldin index needs at least 2 clusters, got {k}"
        raise ValueError(msg)
    return k


def _davies_bouldin(intra: np.ndarray, between: np.ndarray) -> float:
    """Eq. 26 from cluster widths ``d_i`` and centroid distances ``d_ij`` (sklearn conventions)."""
    if np.allclose(intra, 0) or np.allclose(between, 0):
        return 0.0
    between = between.copy()
    between[between == 0] = np.inf  # diagonal, and clusters with identical centroids
    ratio = (intra[:, None] + intra[None, :]) / between
    return float(np.mean(np.max(ratio, axis=1)))
