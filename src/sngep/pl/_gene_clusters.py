"""``sngep.pl.gene_clusters``: the paper's Fig. 3 for any clusters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys
from sngep.pl._utils import (
    blank,
    check_positive_int,
    cluster_inputs,
    finish,
    grid_in,
    masked,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def gene_clusters(
    adata: AnnData,
    *,
    key: str = _keys.DARLC,
    clusters: Sequence | None = None,
    n_genes: int = 5,
    sort_by: str = "confidence",
    images_key: str = _keys.GENE_IMAGES,
    denoised: bool = False,
    cmap: str = "viridis",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """Gene images of cluster members: rows are clusters, columns their top genes.

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.darlc` (or any categorical ``adata.var[key]``).
    key
        ``adata.var`` column of cluster labels; soft assignments are read from
        ``adata.varm[key + '_soft']`` when present.
    clusters
        Cluster or list of clusters to show (default: all, at most 12, largest first).
    n_genes
        Genes per cluster (columns).
    sort_by
        ``'confidence'`` (highest soft assignment first; falls back to order of appearance
        without soft assignments) or ``'name'``.
    images_key
        ``.varm`` key of the images.
    denoised
        Show the GAT-denoised views (``adata.varm[key + '_denoised']``) instead.
    cmap
        Colormap; each image has its own colour scale (genes differ in expression level).
    ax
        Draw into this axes' cell (subdivided) instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.gene_clusters(adata, return_fig=True); fig.savefig("gene_clusters.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Figure with ``return_fig=True``, else the array of Axes (``None`` when shown).
    """
    check_positive_int(n_genes, "n_genes")
    images, mask, clusters, members_of = cluster_inputs(
        adata, key, clusters, images_key, denoised, limit=12, sort_by=sort_by
    )

    fig, spec = grid_in(ax, len(clusters), n_genes)
    grid = (spec.subgridspec if spec is not None else fig.add_gridspec)(len(clusters), n_genes)
    axes = np.empty((len(clusters), n_genes), dtype=object)
    for r, c in enumerate(clusters):
        members = members_of[c]
        for j in range(n_genes):
            a = fig.add_subplot(grid[r, j])
            axes[r, j] = a
            blank(a)
            if j == 0:
                a.set_ylabel(f"cluster {c}\n(n={len(members)})", fontsize=8)
            if j < len(members):
                g = members[j]
                a.imshow(masked(images[g], mask), cmap=cmap, interpolation="nearest")
                a.set_title(str(adata.var_names[g]), fontsize=8)
    return finish(fig, show, return_fig, axes)
