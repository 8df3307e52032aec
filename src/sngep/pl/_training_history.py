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

    Returns
    -------
    The array of Axes (or the Figure with ``return_fig=True``).
    """
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
        axes.append(a)
    axes[-1].set_xlabel("epoch", fontsize=8)
    return finish(fig, show, return_fig, np.array(axes))
