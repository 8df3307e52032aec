"""``sngep.pl.eigengap``: the spectrum behind :func:`sngep.tl.estimate_k` and why K was chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys
from sngep.pl._utils import check_positive_int, finish, require_uns

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
    """Sorted eigenvalues, their gaps, the window of admissible K and the chosen K.

    Eigenvalues ``λ_(i)`` of ``D^-1/2 (L + L^2) D^-1/2`` (main 4.1.3; on the kNN graph of the
    similarity for ``method='knn_eigengap'``) as points on the left axis; on the right axis
    the gap ``λ_(K+1) - λ_(K)`` that each K would have, drawn as a bar between eigenvalues K
    and K + 1. The window of K that :func:`sngep.tl.estimate_k` considered is shaded, the
    chosen gap is red, the runner-up orange; the legend gives K, the window and the K the
    largest gap would give without the window. For ``method='pathway_size'`` (no spectrum)
    the axes say so.

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.estimate_k`.
    key
        ``adata.uns`` key written by ``estimate_k``.
    n_show
        Number of leading eigenvalues to draw (default: all stored up to the end of the
        window, at least ``max(3 K, 10)`` when stored).
    ax
        Draw into this Axes instead of a new figure (the gaps go on a twin axis).
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.eigengap(adata, return_fig=True); fig.savefig("eigengap.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Axes of the eigenvalues (or the Figure with ``return_fig=True``).
    """
    import matplotlib.pyplot as plt

    check_positive_int(n_show, "n_show", optional=True)
    est = require_uns(adata, key, "sngep.tl.estimate_k")
    if not isinstance(est, dict) or "k" not in est or "eigenvalues" not in est:
        msg = (
            f"adata.uns[{key!r}] is not a result of sngep.tl.estimate_k (needs 'k' and "
            "'eigenvalues'); run sngep.tl.estimate_k(adata) again"
        )
        raise ValueError(msg)
    ev = np.asarray(est["eigenvalues"], dtype=float)
    k = int(est["k"])
    params = est.get("params", {})
    method = str(params.get("method", "eigengap"))
    window = params.get("window")
    lo, hi = (int(window[0]), int(window[1])) if window is not None else (None, None)
    if n_show is None:
        n_show = min(ev.size, max(3 * k, 10, (hi or 0) + 1))
    ev = ev[:n_show]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    else:
        fig = ax.get_figure()
    if ev.size == 0:
        ax.text(
            0.5,
            0.5,
            f"K = {k}\n(method={method!r}: no spectrum)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("number of clusters")
        return finish(fig, show, return_fig, ax)

    idx = np.arange(1, ev.size + 1)
    gaps = np.diff(ev)  # gaps[j] belongs to K = j + 1, drawn at x = K + 0.5
    kk = np.arange(1, gaps.size + 1)
    ax2 = ax.twinx()  # gaps behind the eigenvalues; the window shaded behind the gaps
    if lo is not None:
        # the bars of K = lo .. hi sit at lo + 0.5 .. hi + 0.5
        ax2.axvspan(
            lo, min(hi, gaps.size) + 1, color="0.92", zorder=0, label=f"window K in [{lo}, {hi}]"
        )
    colours = np.array(["0.65"] * gaps.size, dtype=object)
    if lo is not None:
        colours[(kk >= lo) & (kk <= hi)] = "C0"
    runner_up = int(est.get("runner_up", -1))
    if 1 <= runner_up <= gaps.size:
        colours[runner_up - 1] = "C1"
    if 1 <= k <= gaps.size:
        colours[k - 1] = "C3"
    ax2.bar(kk + 0.5, gaps, width=0.6, color=list(colours), alpha=0.6, zorder=1)
    ax2.set_ylabel(r"gap $\lambda_{(K+1)} - \lambda_{(K)}$")
    ax.plot(idx, ev, "o-", ms=3, lw=1, color="k", zorder=3)
    ax.set_zorder(ax2.get_zorder() + 1)  # eigenvalues above the bars
    ax.patch.set_visible(False)
    why = "largest gap in the window" if lo is not None and method != "eigengap" else "largest gap"
    if k <= ev.size:
        ax.axvline(k + 0.5, color="C3", ls="--", lw=1, label=f"K = {k} ({why})")
    if 1 <= runner_up <= gaps.size:
        ax.plot([], [], "s", color="C1", alpha=0.6, label=f"runner-up K = {runner_up}")
    k_free = int(est.get("k_unrestricted", -1))
    if k_free > 0 and k_free != k:
        ax.axvline(k_free + 0.5, color="0.4", ls=":", lw=1, label=f"without window: K = {k_free}")
    handles = [h for a in (ax2, ax) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, fontsize=7, loc="upper left", framealpha=0.85, edgecolor="none")
    ax.set_xlabel("index i (K for the gaps)")
    ax.set_ylabel(r"eigenvalue $\lambda_{(i)}$")
    graph = "kNN graph" if params.get("n_neighbors") is not None else "similarity"
    if method == "knn_eigengap":
        ax.set_title(f"eigengap on the {graph}, K in a window")
    else:
        ax.set_title("eigengap (eq. 25)")
    return finish(fig, show, return_fig, ax)
