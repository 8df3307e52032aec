"""``sngep.pl.training_history``: every loss term and the label change per epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys
from sngep.pl._utils import finish, grid_in, require_uns

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def training_history(
    adata: AnnData,
    *,
    key: str = _keys.DARLC,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """One small panel per recorded quantity of :func:`sngep.tl.darlc` against the epoch.

    Epochs are whole numbers on every x axis, and every panel of the bottom row of each
    column is labelled "epoch".

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.darlc`.
    key
        ``adata.uns`` key written by ``tl.darlc`` (its ``'history'``).
    ax
        Draw into this axes' cell (subdivided) instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.training_history(adata, return_fig=True);
        fig.savefig("training_history.png", dpi=150)`` (plots return the figure rather than
        taking a ``save=`` argument).

    Returns
    -------
    The Figure with ``return_fig=True``, else the array of Axes (``None`` when shown).
    """
    from matplotlib.ticker import MaxNLocator

    hist = require_uns(adata, key, "sngep.tl.darlc").get("history", {})
    names = [
        k for k in sorted(hist) if k != "phase" and np.isfinite(np.asarray(hist[k], float)).any()
    ]
    if not names:
        msg = f"adata.uns[{key!r}]['history'] holds no per-epoch values"
        raise ValueError(msg)
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, spec = grid_in(ax, nrows, ncols, panel_size=2.3)
    grid = (spec.subgridspec if spec is not None else fig.add_gridspec)(nrows, ncols)
    axes = []
    for i, name in enumerate(names):
        a = fig.add_subplot(grid[i // ncols, i % ncols])
        y = np.asarray(hist[name], dtype=float)
        a.plot(np.arange(1, y.size + 1), y, ".-", lw=1, ms=3)
        a.set_title(name, fontsize=8)
        a.tick_params(labelsize=7)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        # the lowest panel of each column carries the x label (the last row may be short)
        if i + ncols >= len(names):
            a.set_xlabel("epoch", fontsize=8)
        axes.append(a)
    return finish(fig, show, return_fig, np.array(axes))
