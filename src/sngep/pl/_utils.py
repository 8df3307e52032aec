"""Shared plumbing for plots: read inputs with errors that name the tl call, place the figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.gridspec import SubplotSpec


def require_uns(adata: AnnData, key: str, producer: str) -> dict:
    """Return ``adata.uns[key]`` or raise a KeyError naming the function that writes it."""
    if key not in adata.uns:
        msg = f"adata.uns[{key!r}] not found; run {producer} first"
        raise KeyError(msg)
    return adata.uns[key]


def require_var(adata: AnnData, key: str, producer: str):
    """Return ``adata.var[key]`` or raise a KeyError naming the function that writes it."""
    if key not in adata.var:
        msg = f"adata.var[{key!r}] not found; run {producer} first"
        raise KeyError(msg)
    return adata.var[key]


def grid_in(
    ax: Axes | None, nrows: int, ncols: int, panel_size: float = 1.6
) -> tuple[Figure, SubplotSpec | None]:
    """A figure and a subplot spec to subdivide: ``ax``'s own cell if given, else a new figure."""
    import matplotlib.pyplot as plt

    if ax is not None:
        fig = ax.get_figure()
        spec = ax.get_subplotspec()
        ax.remove()
        return fig, spec
    fig = plt.figure(
        figsize=(panel_size * ncols + 0.8, panel_size * nrows + 0.4), layout="constrained"
    )
    return fig, None


def finish(fig: Figure, show: bool | None, return_fig: bool, ret):
    """Scanpy's convention: show in interactive sessions unless asked for the object."""
    import matplotlib.pyplot as plt

    if show is None:
        show = not return_fig and plt.isinteractive()
    if show:
        plt.show()
        return None
    return fig if return_fig else ret


def masked(image: np.ndarray, mask: np.ndarray) -> np.ma.MaskedArray:
    """An image with out-of-tissue pixels masked (drawn as the colormap's 'bad' colour)."""
    return np.ma.masked_array(image, mask=~mask)
