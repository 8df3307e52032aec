"""``sngep.tl.gene_leiden``: Leiden on the gene embedding, optionally at a given K."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sngep import _keys
from sngep import _logging as logg
from sngep.tl._gene_adata import gene_adata

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
    """Cluster genes by Leiden on a kNN graph of their embedding.

    Builds the gene graph with :func:`scanpy.pp.neighbors` on ``adata.varm[use_rep]`` (via
    :func:`sngep.tl.gene_adata`) and runs :func:`scanpy.tl.leiden` (igraph flavour). With
    ``n_clusters`` the resolution is found by bisection (on ``log resolution``, the number of
    Leiden clusters grows with it) until exactly ``n_clusters`` clusters come out; if no
    resolution within ``max_iter`` steps gives exactly that many, the closest count found is
    kept and a warning is logged.

    Parameters
    ----------
    adata
        Spots x genes after :func:`sngep.tl.darlc`.
    use_rep
        ``.varm`` key of the gene embedding.
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
        ``adata.var`` column of the labels and ``adata.uns`` key of the parameters.
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
    import scanpy as sc

    adata = adata.copy() if copy else adata
    g = gene_adata(adata, use_rep=use_rep)
    n = g.n_obs
    if n < 3:
        msg = f"need at least 3 genes for a gene graph, got {n}"
        raise ValueError(msg)
    if n_clusters is not None and not 1 <= int(n_clusters) <= n:
        msg = f"n_clusters must be between 1 and the number of genes ({n}), got {n_clusters}"
        raise ValueError(msg)
    if resolution <= 0:
        msg = f"resolution must be > 0, got {resolution}"
        raise ValueError(msg)
    seed = 0 if random_state is None else int(random_state)
    start = logg.info(f"Leiden on the gene graph of {use_rep!r} ({n} genes)")
    sc.pp.neighbors(g, use_rep=use_rep, n_neighbors=min(n_neighbors, n - 1), random_state=seed)

    def run(res: float) -> np.ndarray:
        sc.tl.leiden(
            g,
            resolution=res,
            random_state=seed,
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
