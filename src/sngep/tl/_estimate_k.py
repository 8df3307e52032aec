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
_K_MAX_DEFAULT = 100  # method='eigengap'
# method='knn_eigengap': at most 100 clusters by default (Lanczos for 101 eigenvalues of the
# 15-NN graph of 6,581 DLPFC genes: 7 s; for 201: 160 s), a lower end of at most 50
_WINDOW_MAX_K = 100
_PATHWAY_SIZE = 30  # main text 4.1.5: average cluster size ~ a typical pathway (30 genes)
_METHODS = ("knn_eigengap", "eigengap", "pathway_size")


def estimate_k(
    adata: AnnData,
    *,
    similarity_key: str = _keys.SEED_SIMILARITY,
    method: Literal["knn_eigengap", "eigengap", "pathway_size"] = "knn_eigengap",
    k_min: int | None = None,
    k_max: int | None = None,
    mean_cluster_size: tuple[float, float] = (10, 100),
    solver: Literal["auto", "dense", "sparse", "knn"] = "auto",
    n_neighbors: int = _N_NEIGHBORS_DEFAULT,
    key_added: str = _keys.ESTIMATE_K,
    copy: bool = False,
) -> AnnData | None:
    """Estimate the number of gene clusters K.

    ``method='knn_eigengap'`` (the default): the eigengap of the paper's matrix (below) on
    the ``n_neighbors``-nearest-neighbour graph of the similarity, K restricted to a window of
    usable cluster sizes. By default the window is ``[max(2, ceil(n_genes / 100)),
    n_genes // 10]``, clusters of 10 to 100 genes on average, clipped to at most 100 clusters
    with a lower end of at most 50 (the cost of the spectrum: beyond 5000 genes the window
    is ``[50, 100]``), and never below the number of groups that the graph leaves
    unconnected to each other (clearly separated patterns are not merged). K is the one with the largest gap ``λ_{K+1} - λ_K`` inside the window; the
    runner-up, its gap and the K without the window are recorded and logged, so that a weak
    choice shows (:func:`sngep.pl.eigengap` draws it).

    Why not the paper's rule as it is: on the dense similarity every gene is weakly linked to
    every other, so the largest gap separates a few broad groups (K = 2-3 on the real data
    sets, the white/grey matter split) or, on other data, sits at one cluster per handful of
    genes (K = 52 for 150 DLPFC genes). Keeping each gene's strongest links only is the usual
    graph for spectral clustering (von Luxburg 2007, section 2.2); on planted data it
    recovers the K that the dense spectrum misses (12 planted patterns, 3 variants of 4 kinds:
    the dense eigengap gives the 4 kinds), and the window excludes the trivial and the
    singleton ends.

    ``method='eigengap'`` (main text 4.1.3, unchanged, for reproducing the paper): with
    ``W`` the similarity (negatives clipped, see Notes), ``D`` its degree matrix and
    ``L = D - W``, form ``L' = L + L^2`` (eq. 23) and ``𝕃 = D^{-1/2} L' D^{-1/2}`` (eq. 24),
    sort its eigenvalues ``λ_1 <= λ_2 <= ...`` and take the K in ``[k_min, k_max]`` with the
    largest gap ``λ_{K+1} - λ_K`` (eq. 25, see Notes for the index), on the dense
    similarity up to 3000 genes.

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
    method
        ``'knn_eigengap'``, ``'eigengap'`` or ``'pathway_size'``.
    k_min
        Smallest admissible K (>= 1). Default for ``'knn_eigengap'``:
        ``max(2, ceil(n_genes / mean_cluster_size[1]))``, at most 50, raised to the number of
        groups the graph leaves unconnected; 2 otherwise.
    k_max
        Largest admissible K, ``< n_genes``. Default for ``'knn_eigengap'``:
        ``n_genes // mean_cluster_size[0]``, at most 100 and at least ``k_min`` (the
        ``k_max + 1`` smallest eigenvalues are computed: 7 s for 101 at 6,581 genes, but
        160 s for 201, on one CPU core). Default for ``'eigengap'``:
        ``min(100, max(k_min, n_genes // 2), n_genes - 1)``.
    mean_cluster_size
        ``(smallest, largest)`` mean number of genes per cluster that sets the default window
        of ``'knn_eigengap'`` (ignored by the other methods and for a bound given explicitly).
        The default ``(10, 100)`` brackets the paper's pathway size of 30 genes.
    solver
        How the smallest eigenvalues are found:

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

        ``'knn_eigengap'`` always works on the kNN graph: there ``'auto'`` means ``'dense'``
        up to 3000 genes and ``'sparse'`` above, and ``'knn'`` means ``'sparse'``.
    n_neighbors
        Neighbours per gene of the kNN graph of ``'knn_eigengap'`` and of ``solver='knn'``
        (at most ``n_genes - 1``); recorded in ``params`` when a graph was built. A sparse
        similarity (``seed_similarity(n_neighbors=...)``) is used as it is.
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
        The ``k_max + 1`` smallest eigenvalues of ``𝕃``, ascending (of the kNN graph for
        ``'knn_eigengap'``; empty for ``'pathway_size'``).
    ``'gaps'``
        ``gaps[j] = λ_{j+2} - λ_{j+1}``, the gap that K = j + 1 would have, for
        K = 1 .. k_max (empty for ``'pathway_size'``).
    ``'runner_up'``
        The K with the second largest gap in the window (-1 when the window holds one K or
        for ``'pathway_size'``).
    ``'gap_ratio'``
        The chosen gap divided by the runner-up's: near 1, the choice is weak (NaN when
        there is no runner-up).
    ``'k_unrestricted'``
        The K of the largest gap for K in ``[2, k_max]`` (``[1, k_max]`` when ``k_max`` < 2),
        i.e. without the lower end of the window (-1 for ``'pathway_size'``).
    ``'params'``
        The parameters used: ``'method'``, ``'window'`` (``[k_min, k_max]``, the Ks
        considered), ``'criterion'`` (in words), ``'solver'``, ``'n_neighbors'`` (``None``
        when no graph was built), and for ``'knn_eigengap'`` ``'mean_cluster_size'`` and
        ``'n_separated_groups'`` (connected components of the graph with two genes or more).

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

    *The window* encodes what a gene module is for: a K below ``n_genes / 100`` gives
    modules of hundreds of genes (tissue compartments rather than patterns), a K above
    ``n_genes / 10`` modules of a handful of genes. With fewer than about 40 genes it leaves
    little choice (``K <= n_genes // 10``, unless groups are unconnected): pass ``k_max``.
    On planted data (:func:`sngep.datasets.synthetic`, 2-12 patterns of 10-40 genes, dropout
    0.3 and 0.6, 3 seeds: 144 runs) ``'knn_eigengap'`` returned the planted K every time;
    ``benchmarks/estimate_k.py`` reports the K on real data and the GO scores of the modules
    at that K.
    """
    if method not in _METHODS:
        msg = f"method must be 'knn_eigengap', 'eigengap' or 'pathway_size', got {method!r}"
        raise ValueError(msg)
    if solver not in ("auto", "dense", "sparse", "knn"):
        msg = f"solver must be 'auto', 'dense', 'sparse' or 'knn', got {solver!r}"
        raise ValueError(msg)
    n_genes = adata.n_vars
    for name, value in (("k_min", k_min), ("k_max", k_max)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            msg = f"{name} must be a positive integer or None, got {value!r}"
            raise ValueError(msg)
    given = {"k_min": k_min is not None, "k_max": k_max is not None}
    if method == "knn_eigengap":
        k_min, k_max = _window(n_genes, k_min, k_max, mean_cluster_size)
    elif k_min is None:
        k_min = 2
    k_min = int(k_min)
    if n_genes <= k_min:
        msg = f"need more genes than k_min = {k_min}, got {n_genes} genes"
        raise ValueError(msg)

    params = {
        "similarity_key": similarity_key,
        "k_min": k_min,
        "k_max": None if k_max is None else int(k_max),
        "method": method,
    }
    extra = {"runner_up": -1, "gap_ratio": float("nan"), "k_unrestricted": -1}
    if method == "pathway_size":
        start = logg.info(f"estimating the number of clusters of {n_genes} genes (pathway size)")
        k = max(k_min, int(np.floor(n_genes / _PATHWAY_SIZE + 0.5)))  # round half up
        eigenvalues = np.empty(0)
        gaps = np.empty(0)
        params["criterion"] = f"max(k_min, round(n_genes / {_PATHWAY_SIZE}))"
        why = f"round({n_genes} / {_PATHWAY_SIZE})" + (", raised to k_min" if k == k_min else "")
    else:
        if method == "eigengap" and k_max is None:
            k_max = min(_K_MAX_DEFAULT, max(k_min, n_genes // 2), n_genes - 1)
        _check_k_max(k_max, k_min, n_genes)
        s = _similarity_matrix(adata, similarity_key)
        if method == "knn_eigengap":
            knn = not sp.issparse(s)
            if knn and not (isinstance(n_neighbors, int | np.integer) and n_neighbors >= 1):
                msg = f"n_neighbors must be a positive integer, got {n_neighbors!r}"
                raise ValueError(msg)
            n_nb = min(int(n_neighbors), n_genes - 1) if knn else None
            graph = (
                f"{n_nb}-nearest-neighbour graph of the similarity"
                if knn
                else "sparse similarity as stored"
            )
            start = logg.info(f"estimating the number of clusters of {n_genes} genes")
            w = _clean_similarity(s, similarity_key, n_neighbors=n_nb)
            # clearly separated groups (no link at all in the graph) are never merged
            n_groups = _n_separated_groups(w)
            params["n_separated_groups"] = n_groups
            params["mean_cluster_size"] = [float(x) for x in mean_cluster_size]
            if not given["k_min"] and n_groups > k_min:
                k_min = min(n_groups, n_genes - 1, k_max if given["k_max"] else n_genes)
            if not given["k_max"] and n_groups > k_max:
                k_max = min(n_groups, n_genes - 1)
            _check_k_max(k_max, k_min, n_genes)
            solver = _knn_solver(solver, n_genes, k_max)
        else:
            solver, knn = _eigengap_solver(solver, s, n_genes, k_max, n_neighbors, similarity_key)
            n_nb = int(n_neighbors) if knn else None
            graph = f"{n_nb}-nearest-neighbour graph" if knn else "similarity"
            start = None
        k_max = int(k_max)
        rule = " (eq. 25)" if method == "eigengap" else ""
        params.update(
            k_min=k_min,
            k_max=k_max,
            window=[k_min, k_max],
            criterion=(
                f"largest gap λ_(K+1) - λ_K of D^-1/2 (L + L^2) D^-1/2 on the {graph}, "
                f"K in [{k_min}, {k_max}]{rule}"
            ),
            solver=solver,
            n_neighbors=n_nb,
        )
        how = (
            "dense eigendecomposition"
            if solver == "dense"
            else f"Lanczos for the {k_max + 1} smallest eigenvalues"
        )
        msg = f"largest eigengap{rule} for K in [{k_min}, {k_max}] on the {graph} ({how})"
        if start is None:
            start = logg.info(f"estimating the number of clusters of {n_genes} genes: {msg}")
            w = _clean_similarity(s, similarity_key, n_neighbors=n_nb)
        else:
            logg.info(f"    {msg}")
        eigenvalues = _smallest_eigenvalues(w, k_max + 1, dense=solver == "dense")
        gaps = np.diff(eigenvalues)  # gaps[j] = λ_{j+2} - λ_{j+1}  <->  K = j + 1
        k, extra = _pick(gaps, k_min, k_max)
        why = _explain(k, k_min, k_max, gaps, extra)

    adata = adata.copy() if copy else adata
    adata.uns[key_added] = {
        "k": int(k),
        "eigenvalues": np.asarray(eigenvalues, dtype=np.float64),
        "gaps": np.asarray(gaps, dtype=np.float64),
        **extra,
        "params": params,
    }
    logg.info(
        f"    finished: K = {k} ({why})",
        time=start,
        deep=f"added\n    {key_added!r}, number of clusters and spectrum (adata.uns)",
    )
    return adata if copy else None


def _check_k_max(k_max, k_min: int, n_genes: int) -> None:
    if not isinstance(k_max, int | np.integer) or not k_min <= k_max < n_genes:
        msg = (
            f"k_max must be an integer with k_min <= k_max < n_genes "
            f"(k_min={k_min}, n_genes={n_genes}), got {k_max!r}"
        )
        raise ValueError(msg)


def _window(
    n_genes: int, k_min: int | None, k_max: int | None, mean_cluster_size: tuple[float, float]
) -> tuple[int, int]:
    """Default ``[k_min, k_max]`` of ``'knn_eigengap'``; explicit bounds win."""
    try:
        small, large = (float(x) for x in mean_cluster_size)
    except (TypeError, ValueError):
        small = large = float("nan")
    if not 1 <= small <= large:  # also False for NaN
        msg = (
            "mean_cluster_size must be two numbers (smallest, largest) with "
            f"1 <= smallest <= largest, got {mean_cluster_size!r}"
        )
        raise ValueError(msg)
    if k_min is None:
        lo = min(max(2, int(np.ceil(n_genes / large))), _WINDOW_MAX_K // 2)
    else:
        lo = int(k_min)
    if k_max is None:
        hi = min(int(n_genes // small), _WINDOW_MAX_K, n_genes - 1)
        hi = max(hi, min(lo, n_genes - 1))
    else:
        hi = int(k_max)
        if k_min is None:
            lo = min(lo, hi)
    return lo, hi


def _n_separated_groups(w) -> int:
    """Connected components of the graph ``w`` with at least two genes."""
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(sp.csr_matrix(w), directed=False)
    return int((np.bincount(labels) >= 2).sum())


def _knn_solver(solver: str, n_genes: int, k_max: int) -> str:
    """Effective solver of ``'knn_eigengap'`` (the graph is sparse: 'knn' = 'sparse')."""
    small = n_genes <= _DENSE_MAX_GENES or k_max + 2 >= n_genes
    solver = {"auto": "dense" if small else "sparse", "knn": "sparse"}.get(solver, solver)
    if solver != "dense" and k_max + 2 >= n_genes:
        msg = (
            f"solver={solver!r} needs k_max <= n_genes - 3 (k_max={k_max}, "
            f"n_genes={n_genes}); use solver='dense'"
        )
        raise ValueError(msg)
    return solver


def _eigengap_solver(solver, s, n_genes, k_max, n_neighbors, key) -> tuple[str, bool]:
    """Effective solver of ``'eigengap'`` and whether a kNN graph of ``s`` is built."""
    if solver == "auto":
        if n_genes <= _DENSE_MAX_GENES or k_max + 2 >= n_genes:
            solver = "dense"
        else:
            solver = "sparse" if sp.issparse(s) else "knn"
            if solver == "knn":
                logg.warning(
                    f"estimate_k: adata.varp[{key!r}] is a dense {n_genes} x "
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
    if knn and (not isinstance(n_neighbors, int | np.integer) or not 1 <= n_neighbors < n_genes):
        msg = (
            f"n_neighbors must be an integer in [1, n_genes - 1 = {n_genes - 1}], "
            f"got {n_neighbors!r}"
        )
        raise ValueError(msg)
    return solver, knn


def _pick(gaps: np.ndarray, k_min: int, k_max: int) -> tuple[int, dict]:
    """K with the largest gap in ``[k_min, k_max]``, its runner-up and the unrestricted K."""
    inside = gaps[k_min - 1 : k_max]
    order = np.argsort(-inside, kind="stable")
    k = int(k_min + order[0])
    runner_up, ratio = -1, float("nan")
    if inside.size > 1:
        runner_up = int(k_min + order[1])
        second = float(inside[order[1]])
        ratio = float(inside[order[0]] / second) if second > 0 else float("inf")
    lo = 2 if k_max >= 2 else 1
    k_free = int(lo + np.argmax(gaps[lo - 1 : k_max]))
    return k, {"runner_up": runner_up, "gap_ratio": ratio, "k_unrestricted": k_free}


def _explain(k: int, k_min: int, k_max: int, gaps: np.ndarray, extra: dict) -> str:
    """Why this K, in one line for the log."""
    out = f"the largest gap for K in [{k_min}, {k_max}], {gaps[k - 1]:.3g}"
    if extra["runner_up"] > 0:
        r = extra["runner_up"]
        out += f"; runner-up K = {r}, {gaps[r - 1]:.3g}"
        if extra["gap_ratio"] < 1.2:
            out += ": a weak choice, see sngep.pl.eigengap"
    if extra["k_unrestricted"] != k:
        out += f"; without the window K = {extra['k_unrestricted']}"
    return out


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
