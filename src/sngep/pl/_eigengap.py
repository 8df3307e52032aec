"""``sngep.pl.eigengap``: the spectrum behind :func:`sngep.tl.estimate_k`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys
from sngep.pl._utils import finish, require_uns

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def eigengap(
    adata: AnnData,
    *,
    key: str = _keys.ESTIMATE_K,
    n_show: int | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """Sorted eigenvalues of the normalised Laplacian (main 4.1.3) and the chosen K.

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.estimate_k`.
    key
        ``adata.uns`` key written by ``estimate_k``.
    n_show
        Number of leading eigenvalues to draw (default: all stored, at most 3 K).
    ax
        Draw into this Axes instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.eigengap(adata, return_fig=True); fig.savefig("eigengap.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Axes (or the Figure with ``return_fig=True``).
    """
    import matplotlib.pyplot as plt

    est = require_uns(adata, key, "sngep.tl.estimate_k")
    ev = np.asarray(est["eigenvalues"], dtype=float)
    k = int(est["k"])
    if n_show is None:
        n_show = min(ev.size, max(3 * k, 10))
    ev = ev[:n_show]
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
    else:
        fig = ax.get_figure()
    idx = np.arange(1, ev.size + 1)
    ax.plot(idx, ev, "o-", ms=3, lw=1)
    if k <= ev.size:
        ax.axvline(k + 0.5, color="C3", ls="--", lw=1, label=f"K = {k} (largest gap)")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel("index i")
    ax.set_ylabel(r"eigenvalue $\lambda_{(i)}$")
    ax.set_title("eigengap (eq. 25)")
    return finish(fig, show, return_fig, ax)
