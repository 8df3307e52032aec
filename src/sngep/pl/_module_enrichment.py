"""``sngep.pl.module_enrichment``: dot plot of the top gene sets of every gene module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from sngep.pl._utils import check_positive_int, finish, require_uns

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes


def module_enrichment(
    adata: AnnData,
    *,
    key: str = "darlc_enrichment",
    modules: list | None = None,
    n_terms: int = 3,
    fdr: float | None = None,
    size_by: Literal["n_overlap", "fold"] = "n_overlap",
    max_name_length: int = 50,
    cmap: str = "Reds",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
):
    """Dot plot of the top gene sets per module (x: module, y: gene set).

    The ``n_terms`` sets of lowest p-value of every module are drawn as rows; a dot marks
    every (module, set) pair of those rows with an overlap, sized by ``size_by`` and coloured
    by ``-log10`` of the within-module q-value, so that a set shared by several modules shows
    in each.

    Parameters
    ----------
    adata
        AnnData after :func:`sngep.tl.module_enrichment`.
    key
        ``adata.uns`` key written by ``module_enrichment`` (its ``key_added``).
    modules
        Module or list of modules to show (default: all, in category order).
    n_terms
        Sets per module.
    fdr
        Only sets with ``qval < fdr`` become rows (default: the top ``n_terms`` whatever
        their q-value; the colour shows it).
    size_by
        Dot size: ``'n_overlap'`` (genes in module and set) or ``'fold'`` (over expected).
    max_name_length
        Set descriptions are cut to this many characters.
    cmap
        Colormap of ``-log10 q``.
    ax
        Draw into this axes instead of a new figure.
    show
        Call ``plt.show()`` (default: in interactive sessions, unless ``return_fig=True``).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`, e.g. to save it:
        ``fig = sngep.pl.module_enrichment(adata, return_fig=True); fig.savefig("enrichment.png", dpi=150)``
        (plots return the figure rather than taking a ``save=`` argument).

    Returns
    -------
    The Axes (or the Figure with ``return_fig=True``).
    """
    import matplotlib.pyplot as plt

    res = require_uns(adata, key, "sngep.tl.module_enrichment")
    if not isinstance(res, dict) or "results" not in res:
        msg = f"adata.uns[{key!r}] has no 'results'; run sngep.tl.module_enrichment first"
        raise KeyError(msg)
    if size_by not in ("n_overlap", "fold"):
        msg = f"size_by must be 'n_overlap' or 'fold', got {size_by!r}"
        raise ValueError(msg)
    check_positive_int(n_terms, "n_terms")
    check_positive_int(max_name_length, "max_name_length")
    table = pd.DataFrame(res["results"]).copy()
    table["module"] = table["module"].astype(str)
    all_modules = [str(m) for m in pd.Categorical(res["results"]["module"]).categories]
    if modules is None:
        modules = all_modules
    elif isinstance(modules, str | int | np.integer):
        modules = [modules]  # one module, not the characters of its name
    modules = [str(m) for m in modules]
    missing = [m for m in modules if m not in all_modules]
    if missing:
        msg = f"modules {missing} not in adata.uns[{key!r}]['results'] (modules: {all_modules})"
        raise ValueError(msg)
    table = table[table["module"].isin(modules)]
    top = table if fdr is None else table[table["qval"] < fdr]
    top = (
        top.sort_values(["pval", "term"], kind="stable").groupby("module", sort=False).head(n_terms)
    )
    # rows: sets in the order of the first module that shows them
    top = top.assign(_m=top["module"].map({m: i for i, m in enumerate(modules)}))
    terms = list(dict.fromkeys(top.sort_values(["_m", "pval"], kind="stable")["term"]))
    dots = table[table["term"].isin(terms)]
    names = dict(zip(table["term"], table["name"], strict=False))

    if ax is None:
        fig, ax = plt.subplots(
            figsize=(
                1.6 + 0.45 * len(modules) + 0.055 * max_name_length,
                1.2 + 0.28 * max(len(terms), 1),
            ),
            layout="constrained",
        )
    else:
        fig = ax.get_figure()
    x = dots["module"].map({m: i for i, m in enumerate(modules)}).to_numpy(float)
    y = dots["term"].map({t: i for i, t in enumerate(terms)}).to_numpy(float)
    value = dots[size_by].to_numpy(float)
    colour = -np.log10(np.clip(dots["qval"].to_numpy(float), 1e-300, 1.0))
    vmax = max(float(colour.max()) if colour.size else 1.0, 1.0)
    scale = 220.0 / max(float(value.max()) if value.size else 1.0, 1e-12)
    sc = ax.scatter(
        x, y, s=value * scale, c=colour, cmap=cmap, vmin=0.0, vmax=vmax, edgecolors="0.3", lw=0.5
    )
    ax.set_xticks(range(len(modules)), modules)
    ax.set_yticks(range(len(terms)), [_cut(names[t], max_name_length) for t in terms])
    ax.set_xlim(-0.6, len(modules) - 0.4)
    ax.set_ylim(len(terms) - 0.5, -0.5)
    ax.set_xlabel("module")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.set_axisbelow(True)
    fig.colorbar(sc, ax=ax, label=r"$-\log_{10}$ q", shrink=0.6, pad=0.02)
    if value.size:
        ref = np.unique(np.round(np.quantile(value, [0.25, 0.5, 1.0]), 1))
        handles = [
            ax.scatter([], [], s=v * scale, color="0.6", edgecolors="0.3", lw=0.5) for v in ref
        ]
        label = "overlap" if size_by == "n_overlap" else "fold"
        ax.legend(
            handles,
            [f"{v:g}" for v in ref],
            title=label,
            loc="upper left",
            bbox_to_anchor=(1.0, 0.0),
            frameon=False,
            fontsize=7,
            title_fontsize=8,
        )
    if not terms:
        ax.set_title("no gene set to show", fontsize=9)
    return finish(fig, show, return_fig, ax)


def _cut(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: max(n - 1, 1)] + "\u2026"
