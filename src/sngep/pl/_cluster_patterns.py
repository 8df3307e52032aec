"""``sngep.pl.cluster_patterns``: the mean image of every gene cluster."""

from __future__ import annotations

import math
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
    soft_assignments,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def cluster_patterns(
    adata: AnnData,
    *,
    key: str = _keys.DARLC,
    clusters: Sequence | None = None,
    images_key: str = _keys.GENE_IMAGES,
    denoised: bool = False,
    ncols: int | None = None,
    cmap: str = "magma",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """Mean pattern of every gene cluster, all clusters in one grid.

    Each member image is standardised inside the tissue (mean 0, sd 1) before averaging, so
    that highly expressed genes do not dominate the pattern; members are weighted by their
    soft assignment (``adata.varm[key + '_soft']``) when present. Panels share one colour
    scale (z-score units, clipped at the 99th percentile of
    absolute values).

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.darlc` (or any categorical ``adata.var[key]``, e.g.
        from :func:`sngep.tl.gene_leiden`).
    key
        ``adata.var`` column of cluster labels.
    clusters
        Cluster or list of clusters to show (default: all, largest first).
    images_key
        ``.varm`` key of the images.
    denoised
        Average the GAT-denoised views (``adata.varm[key + '_denoised']``) instead.
    ncols
        Panels per row (default: about square).
    cmap
        Colormap.
    ax
        Draw into this axes' cell (subdivided) instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.cluster_patterns(adata, return_fig=True); fig.savefig("cluster_patterns.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Figure with ``return_fig=True``, else the array of Axes (``None`` when shown).
    """
    check_positive_int(ncols, "ncols", optional=True)
    images, mask, clusters, members_of = cluster_inputs(adata, key, clusters, images_key, denoised)
    soft = soft_assignments(adata, key)
    cats = [str(c) for c in adata.var[key].astype("category").cat.categories]

    inside = images[:, mask].astype(np.float64)
    sd = inside.std(axis=1)
    z = (inside - inside.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)[:, None]
    z[sd == 0] = 0.0
    means = []
    for c in clusters:
        m = members_of[c]
        w = np.ones(m.size) if soft is None else soft[m, cats.index(c)]
        pattern = np.zeros(mask.shape)
        if m.size and w.sum() > 0:
            pattern[mask] = (w[:, None] * z[m]).sum(axis=0) / w.sum()
        means.append(pattern)
    # one robust colour scale: a few extreme pixels must not wash out every panel
    lim = float(np.percentile(np.abs(np.concatenate([p[mask] for p in means])), 99)) or 1.0

    ncols = ncols or max(1, math.ceil(math.sqrt(len(clusters))))
    nrows = math.ceil(len(clusters) / ncols)
    fig, spec = grid_in(ax, nrows, ncols, panel_size=1.8)
    grid = (spec.subgridspec if spec is not None else fig.add_gridspec)(nrows, ncols)
    axes = np.empty((nrows, ncols), dtype=object)
    im = None
    for i in range(nrows * ncols):
        a = fig.add_subplot(grid[i // ncols, i % ncols])
        axes[i // ncols, i % ncols] = a
        blank(a)
        if i < len(clusters):
            c = clusters[i]
            im = a.imshow(
                masked(means[i], mask), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest"
            )
            a.set_title(f"cluster {c} (n={members_of[c].size})", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=[a for a in axes.ravel()], shrink=0.6, label="mean z-score")
    return finish(fig, show, return_fig, axes)
