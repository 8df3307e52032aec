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
_N_NEIGHBORS_DEFAULT = 15  # kNN graph of a large dense similarity (solver='auto' / 'knn')
_CHUNK = 1024  # rows per block when reading a dense similarity
_K_MAX_DEFAULT = 100
_PATHWAY_SIZE = 30  # main text 4.1.5: average cluster size ~ a typical pathway (30 genes)


def estimate_k(
    adata: AnnData,
    *,
    similarity_key: str = _keys.SEED_SIMILARITY,
    k_min: int = 2,
    k_max: int | None = None,
    method: Literal["eigengap", "pathway_size"] = "eigengap",
    solver: Literal["auto", "dense", "sparse", "knn"] = "auto",
    n_neighbors: int = _N_NEIGHBORS_DEFAULT,
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
        How the ``k_max + 1`` smallest eigenvalues are found:

        ``'dense'``
            :func:`scipy.linalg.eigvalsh` on the explicit matrix (forms ``L^2``); exact,
            ``O(n_genes^3)``: seconds at 3000 genes.
        ``'sparse'``
            Lanczos (:func:`scipy.sparse.linalg.eigsh`) on an operator that never forms
            ``L^2``; exact. Fast on a sparse kNN similarity (about 20 s at 12,000 genes
            on one CPU core), slow on a dense one (each step reads the whole
            ``n_genes x n_genes`` matrix: about 5 minutes at 12,000 genes).
        ``'knn'``
            Lanczos on the ``n_neighbors``-nearest-neighbour graph of the similarity: for
            each gene its ``n_neighbors`` most similar genes, kept if either gene keeps the
            other (the graph :func:`sngep.tl.seed_similarity` stores with the same
            ``n_neighbors``). A sparse similarity is used as it is.
        ``'auto'``
            ``'dense'`` up to 3000 genes; above, ``'sparse'`` for a sparse similarity and
            ``'knn'`` for a dense one (logged: its K can differ from the exact spectrum of
            the dense similarity, which ``solver='sparse'`` computes).
    n_neighbors
        Neighbours per gene of the kNN graph of ``solver='knn'`` (and of ``'auto'`` on a dense
        similarity of more than 3000 genes); recorded in ``params`` when a graph was built.
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
    if method not in ("eigengap", "pathway_size"):
        msg = f"method must be 'eigengap' or 'pathway_size', got {method!r}"
        raise ValueError(msg)
    if solver not in ("auto", "dense", "sparse", "knn"):
        msg = f"solver must be 'auto', 'dense', 'sparse' or 'knn', got {solver!r}"
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
        start = logg.info(f"estimating the number of clusters of {n_genes} genes (pathway size)")
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
        s = _similarity_matrix(adata, similarity_key)
        if solver == "auto":
            if n_genes <= _DENSE_MAX_GENES or k_max + 2 >= n_genes:
                solver = "dense"
            else:
                solver = "sparse" if sp.issparse(s) else "knn"
                if solver == "knn":
                    logg.warning(
                        f"estimate_k: adata.varp[{similarity_key!r}] is a dense {n_genes} x "
                        f"{n_genes} similarity; using its {n_neighbors}-nearest-neighbour graph "
                        "(seconds) instead of the exact spectrum of the dense matrix (minutes: "
                        "solver='sparse'). The K can differ; seed_similarity(n_neighbors=...) "
                        "stores such a graph directly."
                    )
        if solver != "dense" and k_max + 2 >= n_genes:
            msg = (
                f"solver={solver!r} needs k_max <= n_genes - 3 (k_max={k_max}, "
                f"n_genes={n_genes}); use solver='dense'"
            )
            raise ValueError(msg)
        knn = solver == "knn" and not sp.issparse(s)
        if knn and (
            not isinstance(n_neighbors, int | np.integer) or not 1 <= n_neighbors < n_genes
        ):
            msg = (
                f"n_neighbors must be an integer in [1, n_genes - 1 = {n_genes - 1}], "
                f"got {n_neighbors!r}"
            )
            raise ValueError(msg)
        how = {
            "dense": "dense eigendecomposition",
            "sparse": f"Lanczos for the {k_max + 1} smallest eigenvalues",
            "knn": f"Lanczos for the {k_max + 1} smallest eigenvalues, on the "
            + (f"{n_neighbors}-nearest-neighbour graph" if knn else "sparse similarity"),
        }[solver]
        start = logg.info(
            f"estimating the number of clusters of {n_genes} genes by the eigengap ({how})"
        )
        w = _clean_similarity(s, similarity_key, n_neighbors=n_neighbors if knn else None)
        params["solver"] = solver
        params["n_neighbors"] = int(n_neighbors) if knn else None
        eigenvalues = _smallest_eigenvalues(w, k_max + 1, dense=solver == "dense")
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


def _similarity_matrix(adata: AnnData, key: str):
    """``adata.varp[key]`` as stored (dense array or sparse matrix), not copied."""
    if key not in adata.varp:
        msg = (
            f"adata.varp[{key!r}] not found; run sngep.tl.seed_similarity(adata) first "
            f"(available varp keys: {list(adata.varp.keys())})"
        )
        raise KeyError(msg)
    s = adata.varp[key]
    return s if sp.issparse(s) else np.asarray(s)


def _get_similarity(adata: AnnData, key: str) -> np.ndarray | sp.csr_matrix:
    """Non-negative, symmetric, zero-diagonal float64 copy of ``adata.varp[key]``."""
    return _clean_similarity(_similarity_matrix(adata, key), key)


def _clean_similarity(s, key: str, *, n_neighbors: int | None = None):
    """Non-negative, symmetric, zero-diagonal float64 copy of ``s``.

    With ``n_neighbors`` (``s`` dense) the result is the sparse kNN graph of that matrix,
    built block by block without a dense float64 copy.
    """
    if n_neighbors is not None:
        return _knn_graph(s, key, n_neighbors)
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


def _knn_graph(s: np.ndarray, key: str, n_neighbors: int) -> sp.csr_matrix:
    """The kNN graph of a dense similarity, cleaned as in :func:`_clean_similarity`.

    Block of rows by block of rows, never a dense float64 copy: ``(S + S.T) / 2`` (equal to
    ``S`` when it is symmetric), negatives clipped to 0, each gene's ``n_neighbors`` largest
    entries kept (not itself); then an entry is kept if either gene keeps it, the rule of
    ``seed_similarity(n_neighbors=...)``.
    """
    n = s.shape[0]
    k = int(n_neighbors)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=np.float64)
    scale = asym = 0.0
    for i in range(0, n, _CHUNK):
        j = min(i + _CHUNK, n)
        rows = np.array(s[i:j], dtype=np.float64)
        cols = np.array(s[:, i:j], dtype=np.float64).T
        if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(cols))):
            msg = f"adata.varp[{key!r}] contains NaN or infinite values; recompute it"
            raise ValueError(msg)
        asym = max(asym, float(np.abs(rows - cols).max()))
        rows += cols
        rows *= 0.5
        np.maximum(rows, 0.0, out=rows)  # negatives -> 0, see Notes of estimate_k
        scale = max(scale, float(rows.max()))
        rows[np.arange(j - i), np.arange(i, j)] = -np.inf  # a gene is not its own neighbour
        top = np.argpartition(-rows, k - 1, axis=1)[:, :k]
        idx[i:j] = top
        val[i:j] = np.take_along_axis(rows, top, axis=1)
    if asym > 1e-6 * max(1.0, scale):
        logg.warning(f"adata.varp[{key!r}] is not symmetric; using (S + S.T) / 2")
    knn = sp.csr_matrix((val.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    w = knn.maximum(knn.T).tocsr()  # union of both genes' neighbours, values of S
    w.eliminate_zeros()
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
