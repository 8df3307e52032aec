"""``sngep.tl.gene_leiden``: Leiden on the gene embedding, optionally at a given K."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import check_finite, is_int

if TYPE_CHECKING:
    from anndata import AnnData


def gene_leiden(
    adata: AnnData,
    *,
    use_rep: str = _keys.X_DARLC,
    resolution: float = 1.0,
    n_clusters: int | None = None,
    n_neighbors: int = 15,
    max_iter: int = 40,
    random_state: int | None = 0,
    key_added: str = "darlc_leiden",
    copy: bool = False,
) -> AnnData | None:
    """Cluster genes by Leiden on a kNN graph of their embedding (or of their images).

    Builds the gene graph :func:`scanpy.pp.neighbors` builds by default (exact Euclidean
    ``n_neighbors`` nearest genes, UMAP's fuzzy weights) on ``adata.varm[use_rep]`` and runs :func:`scanpy.tl.leiden` (igraph flavour). With
    ``n_clusters`` the resolution is found by bisection (on ``log resolution``, the number of
    Leiden clusters grows with it) until exactly ``n_clusters`` clusters come out; if no
    resolution within ``max_iter`` steps gives exactly that many, the closest count found is
    kept and a warning is logged.

    Parameters
    ----------
    adata
        Spots x genes after :func:`sngep.tl.darlc` (or :func:`sngep.pp.standardize_images`).
    use_rep
        ``.varm`` key of a gene embedding ``(n_vars, D)``, or of gene images
        ``(n_vars, H, W)`` such as ``'gene_images_std'`` from
        :func:`sngep.pp.standardize_images`: then the in-tissue pixels
        (``adata.uns[use_rep]['mask']``; every pixel without a stored mask) are the features.
    resolution
        Leiden resolution (the starting point when ``n_clusters`` is given).
    n_clusters
        Wanted number of gene clusters (e.g. the DARLC K, to compare partitions).
    n_neighbors
        Neighbours per gene in the kNN graph (at most ``n_vars - 1``).
    max_iter
        Bisection steps when ``n_clusters`` is given.
    random_state
        Seed of the kNN graph and of Leiden.
    key_added
        ``adata.var`` column of the labels and ``adata.uns`` key of the parameters. A key
        whose ``.uns`` entry another tool wrote (``'darlc'``) is refused; an earlier
        ``gene_leiden`` result under the key is replaced.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` or the copy; writes

    ``adata.var[key_added]``
        Categorical gene cluster labels.
    ``adata.uns[key_added]``
        ``{'params': {...}, 'resolution': float, 'n_clusters': int}``.
    """
    adata = adata.copy() if copy else adata
    rep = _gene_features(adata, use_rep)
    n = rep.shape[0]
    if n < 3:
        msg = f"need at least 3 genes for a gene graph, got {n}"
        raise ValueError(msg)
    if n_clusters is not None and (not is_int(n_clusters) or not 1 <= n_clusters <= n):
        msg = (
            f"n_clusters must be None or an integer between 1 and the number of genes ({n}), "
            f"got {n_clusters!r}"
        )
        raise ValueError(msg)
    if (
        not isinstance(resolution, int | float | np.number)
        or not np.isfinite(resolution)
        or resolution <= 0
    ):
        msg = f"resolution must be a finite number > 0, got {resolution!r}"
        raise ValueError(msg)
    if not is_int(n_neighbors) or n_neighbors < 2:
        msg = (
            "n_neighbors must be an integer >= 2 (scanpy counts the gene itself as its first "
            f"neighbour), got {n_neighbors!r}"
        )
        raise ValueError(msg)
    _check_key_added(adata, key_added)
    seed = 0 if random_state is None else int(random_state)
    start = logg.info(
        f"Leiden on the gene graph of {use_rep!r} ({n} genes, {rep.shape[1]} features)"
    )
    labels, res = leiden_labels(
        rep,
        n_clusters=n_clusters,
        resolution=resolution,
        n_neighbors=n_neighbors,
        max_iter=max_iter,
        random_state=seed,
    )
    found = len(np.unique(labels))
    if n_clusters is not None and found != n_clusters:
        logg.warning(
            f"gene_leiden: no resolution gave exactly {n_clusters} clusters; kept {found} "
            f"(resolution {res:.4g})"
        )
    # clusters numbered by size, largest first, like scanpy
    sizes = pd.Series(labels).value_counts()
    order = {old: str(i) for i, old in enumerate(sizes.index)}
    adata.var[key_added] = pd.Categorical(
        [order[x] for x in labels], categories=[str(i) for i in range(found)]
    )
    adata.uns[key_added] = {
        "params": {
            "use_rep": use_rep,
            "resolution": float(resolution),
            "n_clusters": -1 if n_clusters is None else int(n_clusters),
            "n_neighbors": int(min(n_neighbors, n - 1)),
            "random_state": seed,
        },
        "resolution": float(res),
        "n_clusters": int(found),
    }
    logg.info(
        f"    found {found} gene clusters",
        time=start,
        deep=f"added\n    {key_added!r}, cluster labels (adata.var)",
    )
    return adata if copy else None


def _check_key_added(adata: AnnData, key_added: str) -> None:
    """Refuse a ``key_added`` whose ``.uns`` entry another tool wrote (``'darlc'`` would
    replace the DARLC fit's parameters, mixture and history); a previous gene_leiden result
    under the same key is replaced, as scanpy does."""
    if not isinstance(key_added, str) or not key_added:
        msg = f"key_added must be a non-empty string, got {key_added!r}"
        raise ValueError(msg)
    old = adata.uns.get(key_added)
    if old is None:
        return
    ours = isinstance(old, Mapping) and "use_rep" in old.get("params", {}) and "resolution" in old
    if not ours:
        msg = (
            f"key_added={key_added!r} would overwrite adata.uns[{key_added!r}], which "
            "another tool wrote (a DARLC fit, say); pass another key_added"
        )
        raise ValueError(msg)


def leiden_labels(
    x: np.ndarray,
    *,
    n_clusters: int | None = None,
    resolution: float = 1.0,
    n_neighbors: int = 15,
    max_iter: int = 40,
    random_state: int = 0,
    adjacency: Any = None,
) -> tuple[np.ndarray, float]:
    """Leiden on the kNN graph of the rows of ``x`` (scanpy's neighbours, igraph Leiden).

    With ``n_clusters`` the resolution is bisected (on its log) towards exactly that many
    clusters; the closest count found within ``max_iter`` steps is kept. ``adjacency``: a
    symmetric ``(n, n)`` weighted graph to cluster instead of ``x``'s kNN graph. Returns the
    labels (strings, as scanpy writes them) and the resolution used.
    """
    import anndata as ad
    import scanpy as sc

    from sngep.tl._knn import connectivities

    n = x.shape[0]
    g = ad.AnnData(X=np.zeros((n, 1), dtype=np.float32))
    # scanpy's default neighbour graph (exact Euclidean kNN, UMAP's fuzzy weights), built
    # without UMAP's numba kernels (sngep.tl._knn); Leiden reads it as the adjacency
    if adjacency is None:
        adjacency = connectivities(np.asarray(x), max(min(n_neighbors, n - 1), min(2, n)))

    def run(res: float) -> np.ndarray:
        sc.tl.leiden(
            g,
            adjacency=adjacency,
            resolution=res,
            random_state=random_state,
            flavor="igraph",
            n_iterations=-1,
            directed=False,
            key_added="_leiden",
        )
        return g.obs["_leiden"].to_numpy()

    res = float(resolution)
    labels = run(res)
    if n_clusters is not None:
        res, labels = _bisect_resolution(run, res, labels, int(n_clusters), max_iter)
    return labels, res


def _gene_features(adata: AnnData, use_rep: str) -> np.ndarray:
    """``adata.varm[use_rep]`` as a ``(n_vars, n_features)`` floating-point matrix (a copy).

    Images ``(n_vars, H, W)`` keep their in-tissue pixels; since they are 0 outside the
    tissue, Euclidean distances are the same as on the whole flattened images.
    """
    if use_rep not in adata.varm:
        msg = (
            f"adata.varm[{use_rep!r}] not found; run sngep.tl.darlc(adata) (for 'X_darlc') or "
            f"sngep.pp.standardize_images(adata) (for 'gene_images_std') first "
            f"(available varm keys: {list(adata.varm.keys())})"
        )
        raise KeyError(msg)
    rep = np.asarray(adata.varm[use_rep])
    if rep.dtype.kind != "f":
        rep = rep.astype(np.float32)
    if rep.ndim == 3:
        info = adata.uns.get(use_rep, {})
        mask = info.get("mask") if isinstance(info, dict) else None
        if mask is not None and np.shape(mask) == rep.shape[1:]:
            rep = rep[:, np.asarray(mask, dtype=bool)]
        else:
            rep = rep.reshape(rep.shape[0], -1)
    elif rep.ndim != 2:
        msg = (
            f"adata.varm[{use_rep!r}] must be (n_vars, n_dims) or (n_vars, H, W), "
            f"got shape {rep.shape}"
        )
        raise ValueError(msg)
    check_finite(rep, f"adata.varm[{use_rep!r}]")
    return np.array(rep, order="C")  # a copy: scanpy must not write into adata.varm


def _bisect_resolution(run, res: float, labels: np.ndarray, k: int, max_iter: int):
    """Bisection on ``log(resolution)`` for exactly ``k`` clusters; returns (res, labels)."""
    count = len(np.unique(labels))
    best = (abs(count - k), res, labels)
    lo, hi = None, None  # log-resolutions giving too few / too many clusters
    log_res = np.log(res)
    for _ in range(max_iter):
        if count == k:
            return res, labels
        if count < k:
            lo = log_res
            log_res = log_res + 1.0 if hi is None else 0.5 * (log_res + hi)
        else:
            hi = log_res
            log_res = log_res - 1.0 if lo is None else 0.5 * (lo + log_res)
        res = float(np.exp(log_res))
        labels = run(res)
        count = len(np.unique(labels))
        if abs(count - k) < best[0]:
            best = (abs(count - k), res, labels)
    return best[1], best[2]
