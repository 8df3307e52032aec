"""Number of gene clusters from the seeding similarity (main text 4.1.3, eqs. 23-25)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg

if TYPE_CHECKING:
    from anndata import AnnData

_DENSE_MAX_GENES = 3000  # beyond this the dense O(N^3) path is slower than Lanczos
_K_MAX_DEFAULT = 100
_PATHWAY_SIZE = 30  # main text 4.1.5: average cluster size ~ a typical pathway (30 genes)


def estimate_k(
    adata: AnnData,
    *,
    similarity_key: str = _keys.SEED_SIMILARITY,
    k_min: int = 2,
    k_max: int | None = None,
    method: Literal["eigengap", "pathway_size"] = "eigengap",
    solver: Literal["auto", "dense", "sparse"] = "auto",
    key_added: str = _keys.ESTIMATE_K,
    copy: bool = False,
) -> AnnData | None:
    """Estimate the number of gene clusters K.

    ``method='eigengap'`` (main text 4.1.3): with ``W`` the similarity (negatives clipped,
    see Notes), ``D`` its degree matrix and ``L = D - W``, form ``L' = L + L^2`` (eq. 23) and
    ``𝕃 = D^{-1/2} L' D^{-1/2}`` (eq. 24), sort its eigenvalues
    ``λ_1 <= λ_2 <= ...`` and take the K in ``[k_min, k_max]`` with the largest gap
    ``λ_{K+1} - λ_K`` (eq. 25, see Notes for the index).

    ``method='pathway_size'`` (main text 4.1.5, the heuristic used for the paper's
    experiments): ``K = max(k_min, round(n_genes / 30))`` (halves round up), an average cluster
    of about 30 genes, the typical size of a pathway. No similarity is needed.

    Parameters
    ----------
    adata
        AnnData with a gene-gene similarity from :func:`sngep.tl.seed_similarity`
        (dense or sparse).
    similarity_key
        Key of the similarity in ``adata.varp``.
    k_min
        Smallest admissible K (>= 1).
    k_max
        Largest admissible K, ``< n_genes``. Defaults to ``min(100, max(k_min, n_genes // 2),
        n_genes - 1)``: beyond a few hundred eigenvalues Lanczos becomes slow, and with fewer
        than two genes per cluster on average the gap statistic is meaningless.
    method
        ``'eigengap'`` or ``'pathway_size'``.
    solver
        Eigenvalue solver: ``'dense'`` (:func:`scipy.linalg.eigvalsh`, forms ``L^2``
        explicitly), ``'sparse'`` (Lanczos, :func:`scipy.sparse.linalg.eigsh` on an operator
        that never forms ``L^2``), or ``'auto'``: dense up to 3000 genes, else sparse.
    key_added
        Key in ``adata.uns``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` if ``copy=True``. Sets ``adata.uns[key_added]`` to a dict:

    ``'k'``
        The estimated number of clusters (int).
    ``'eigenvalues'``
        The ``k_max + 1`` smallest eigenvalues of ``𝕃``, ascending (empty for
        ``'pathway_size'``).
    ``'gaps'``
        ``gaps[j] = λ_{j+2} - λ_{j+1}``, the gap that K = j + 1 would have, for
        K = 1 .. k_max (empty for ``'pathway_size'``).
    ``'params'``
        The parameters used.

    Notes
    -----
    *Index of eq. 25.* Taken literally, ``argmax_i λ_(i) - λ_(i-1)`` returns the index of the
    first eigenvalue *after* the gap, i.e. K + 1 for K perfectly separated groups (K zero
    eigenvalues, then a jump). We use the standard eigengap rule (von Luxburg 2007): K is
    the number of eigenvalues before the largest gap, so K disconnected blocks give K.

    *Negative similarities.* Pearson-based similarities can be negative; the paper does not
    say how eq. 23 treats them. ``L = D - S`` is a graph Laplacian (positive semi-definite,
    with one zero eigenvalue per connected component, the property the eigengap relies on)
    only for non-negative weights, and a degree can be zero or negative otherwise, so that
    ``D^{-1/2}`` is undefined. Negative entries are therefore clipped to 0 (anti-correlated
    genes are simply not linked), and the diagonal is set to 0.
    Since ``L' = L (I + L)`` with ``I + L`` positive definite, ``L'`` keeps the null space of
    ``L``: the number of (near-)zero eigenvalues of ``𝕃`` is still the number of groups.

    *Isolated genes* (degree 0 after clipping) get ``D^{-1/2} = 0``, as in
    :func:`scipy.sparse.csgraph.laplacian`; each contributes one zero eigenvalue, i.e. counts
    as its own component. A warning reports how many there are.
    """
    start = logg.info(f"estimating the number of clusters ({method})")
    if method not in ("eigengap", "pathway_size"):
        msg = f"method must be 'eigengap' or 'pathway_size', got {method!r}"
        raise ValueError(msg)
    if solver not in ("auto", "dense", "sparse"):
        msg = f"solver must be 'auto', 'dense' or 'sparse', got {solver!r}"
        raise ValueError(msg)
    n_genes = adata.n_vars
    if not isinstance(k_min, int | np.integer) or k_min < 1:
        msg = f"k_min must be a positive integer, got {k_min!r}"
        raise ValueError(msg)
    if n_genes <= k_min:
        msg = f"need more genes than k_min = {k_min}, got {n_genes} genes"
        raise ValueError(msg)

    params = {
        "similarity_key": similarity_key,
        "k_min": int(k_min),
        "k_max": None if k_max is None else int(k_max),
        "method": method,
    }
    if method == "pathway_size":
        k = max(int(k_min), int(np.floor(n_genes / _PATHWAY_SIZE + 0.5)))  # round half up
        eigenvalues = np.empty(0)
        gaps = np.empty(0)
    else:
        if k_max is None:
            k_max = min(_K_MAX_DEFAULT, max(int(k_min), n_genes // 2), n_genes - 1)
        if not isinstance(k_max, int | np.integer) or not k_min <= k_max < n_genes:
            msg = (
                f"k_max must be an integer with k_min <= k_max < n_genes "
                f"(k_min={k_min}, n_genes={n_genes}), got {k_max!r}"
            )
            raise ValueError(msg)
        k_max = int(k_max)
        params["k_max"] = k_max
        w = _get_similarity(adata, similarity_key)
        use_dense = solver == "dense" or (
            solver == "auto" and (n_genes <= _DENSE_MAX_GENES or k_max + 2 >= n_genes)
        )
        if not use_dense and k_max + 2 >= n_genes:
            msg = (
                f"solver='sparse' needs k_max <= n_genes - 3 (k_max={k_max}, "
                f"n_genes={n_genes}); use solver='dense'"
            )
            raise ValueError(msg)
        params["solver"] = "dense" if use_dense else "sparse"
        eigenvalues = _smallest_eigenvalues(w, k_max + 1, dense=use_dense)
        gaps = np.diff(eigenvalues)  # gaps[j] = λ_{j+2} - λ_{j+1}  <->  K = j + 1
        k = int(k_min + np.argmax(gaps[k_min - 1 : k_max]))

    adata = adata.copy() if copy else adata
    adata.uns[key_added] = {
        "k": int(k),
        "eigenvalues": np.asarray(eigenvalues, dtype=np.float64),
        "gaps": np.asarray(gaps, dtype=np.float64),
        "params": params,
    }
    logg.info(
        f"    finished: K = {k}",
        time=start,
        deep=f"added\n    {key_added!r}, number of clusters and spectrum (adata.uns)",
    )
    return adata if copy else None


def _get_similarity(adata: AnnData, key: str) -> np.ndarray | sp.csr_matrix:
    """Non-negative, symmetric, zero-diagonal float64 copy of ``adata.varp[key]``."""
    if key not in adata.varp:
        msg = (
            f"adata.varp[{key!r}] not found; run sngep.tl.seed_similarity(adata) first "
            f"(available varp keys: {list(adata.varp.keys())})"
        )
        raise KeyError(msg)
    s = adata.varp[key]
    if sp.issparse(s):
        w = sp.csr_matrix(s, dtype=np.float64, copy=True)
        data = w.data
    else:
        w = np.array(s, dtype=np.float64)
        data = w
    if not np.all(np.isfinite(data)):
        msg = f"adata.varp[{key!r}] contains NaN or infinite values; recompute it"
        raise ValueError(msg)
    np.maximum(data, 0.0, out=data)  # negatives -> 0, see Notes of estimate_k (eq. 23)
    if sp.issparse(w):
        w = (w - sp.diags(w.diagonal())).tocsr()
        w.eliminate_zeros()
        asym = abs(w - w.T).max() if w.nnz else 0.0
    else:
        np.fill_diagonal(w, 0.0)
        # row blocks: no second n x n temporary
        asym = max(
            float(np.abs(w[i : i + 1024] - w[:, i : i + 1024].T).max())
            for i in range(0, w.shape[0], 1024)
        )
    if asym > 1e-6 * max(1.0, float(abs(w).max())):
        logg.warning(f"adata.varp[{key!r}] is not symmetric; using (S + S.T) / 2")
        w = (w + w.T) * 0.5
        if sp.issparse(w):
            w = w.tocsr()
    return w


def _smallest_eigenvalues(w, n_eig: int, *, dense: bool) -> np.ndarray:
    """The ``n_eig`` smallest eigenvalues of ``D^-1/2 (L + L^2) D^-1/2``, ``L = D - W``."""
    n = w.shape[0]
    deg = np.asarray(w.sum(axis=1)).ravel()
    isolated = deg <= 0
    if isolated.any():
        logg.warning(
            f"{int(isolated.sum())} genes have no positive similarity to any other gene; "
            "each counts as its own cluster in the eigengap"
        )
    dinv = np.zeros(n)
    dinv[~isolated] = 1.0 / np.sqrt(deg[~isolated])

    if dense:
        from scipy.linalg import eigvalsh

        wd = w.toarray() if sp.issparse(w) else w
        lap = -wd
        lap[np.diag_indices(n)] += deg
        lp = lap + lap @ lap
        lp *= dinv[:, None]
        lp *= dinv[None, :]
        lp = 0.5 * (lp + lp.T)
        vals = eigvalsh(lp, subset_by_index=[0, n_eig - 1])
        return np.sort(vals)

    from scipy.sparse.linalg import LinearOperator, eigsh

    def lap_mv(x: np.ndarray) -> np.ndarray:  # x is (n, m)
        return deg[:, None] * x - w @ x

    def matmat(x: np.ndarray) -> np.ndarray:
        x2 = x if x.ndim == 2 else x[:, None]
        y = dinv[:, None] * x2
        ly = lap_mv(y)
        out = ly + lap_mv(ly)
        out = dinv[:, None] * out
        return out if x.ndim == 2 else out[:, 0]

    op = LinearOperator((n, n), matvec=matmat, matmat=matmat, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: deterministic result
    ncv = min(n, max(2 * n_eig + 1, 20))
    vals = eigsh(op, k=n_eig, which="SA", v0=v0, ncv=ncv, return_eigenvectors=False, tol=1e-10)
    return np.sort(vals)
