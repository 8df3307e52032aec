"""``sngep.pl.similarity``: the seeding similarity, genes ordered by cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from sngep import _keys
from sngep.pl._utils import (
    check_positive_int,
    finish,
    ordered_members,
    pick_clusters,
    require_var,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def similarity(
    adata: AnnData,
    *,
    key: str = _keys.DARLC,
    similarity_key: str = _keys.SEED_SIMILARITY,
    max_genes: int = 2000,
    cmap: str = "RdBu_r",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """Heatmap of the seeding similarity with genes ordered by cluster.

    Clusters run largest first, members most confident first; lines mark the cluster
    boundaries. Good clusters show as bright blocks on the diagonal. With more than
    ``max_genes`` genes an evenly spaced subset of the ordered genes is drawn (every
    cluster keeps its share); the title says so.

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.seed_similarity` and :func:`sngep.tl.darlc` (or any
        categorical ``adata.var[key]``).
    key
        ``adata.var`` column of cluster labels.
    similarity_key
        ``adata.varp`` key of the similarity (dense or sparse kNN).
    max_genes
        Most genes drawn.
    cmap
        Diverging colormap centred on 0.
    ax
        Draw into this Axes instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.similarity(adata, return_fig=True); fig.savefig("similarity.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Axes (or the Figure with ``return_fig=True``).
    """
    import matplotlib.pyplot as plt

    check_positive_int(max_genes, "max_genes")
    require_var(adata, key, "sngep.tl.darlc")
    if similarity_key not in adata.varp:
        msg = f"adata.varp[{similarity_key!r}] not found; run sngep.tl.seed_similarity first"
        raise KeyError(msg)
    clusters = pick_clusters(adata, key, None)
    members_of = ordered_members(adata, key, clusters)
    order = np.concatenate([members_of[c] for c in clusters])
    bounds = np.cumsum([members_of[c].size for c in clusters])[:-1]
    subset = order.size > max_genes
    if subset:
        keep = np.unique(np.linspace(0, order.size - 1, max_genes).round().astype(int))
        bounds = np.searchsorted(keep, bounds)
        order = order[keep]
    s = adata.varp[similarity_key]
    s = s[order][:, order]
    s = s.toarray() if sp.issparse(s) else np.asarray(s)

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.4), layout="constrained")
    else:
        fig = ax.get_figure()
    lim = float(np.abs(s).max()) or 1.0
    im = ax.imshow(s, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    for b in bounds:
        ax.axhline(b - 0.5, color="k", lw=0.5)
        ax.axvline(b - 0.5, color="k", lw=0.5)
    mids = np.concatenate([[0], bounds, [order.size]])
    centres = 0.5 * (mids[:-1] + mids[1:]) - 0.5
    if len(clusters) <= 30:
        ax.set_xticks(centres, clusters, fontsize=7)
        ax.set_yticks(centres, clusters, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel(f"genes by cluster ({key})")
    title = "seeding similarity"
    if subset:
        title += f" ({order.size} of {adata.n_vars} genes)"
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return finish(fig, show, return_fig, ax)
