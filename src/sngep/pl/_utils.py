"""Shared plumbing for plots: read inputs with errors that name the tl call, place the figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep._validate import is_int, soft_columns

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


def check_positive_int(value, name: str, *, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive integer (or ``None`` if optional)."""
    if optional and value is None:
        return
    if not (is_int(value) and value >= 1):
        msg = f"{name} must be {'None or ' if optional else ''}a positive integer, got {value!r}"
        raise ValueError(msg)


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


def ordered_members(
    adata: AnnData, key: str, clusters: list[str], sort_by: str = "confidence"
) -> dict[str, np.ndarray]:
    """Gene indices of each cluster, most confident first (``adata.varm[key + '_soft']``).

    ``sort_by='name'`` orders by gene name; without soft assignments, ``'confidence'`` keeps
    the order of appearance.
    """
    if sort_by not in ("confidence", "name"):
        msg = f"sort_by must be 'confidence' or 'name', got {sort_by!r}"
        raise ValueError(msg)
    labels = adata.var[key].astype("category")
    cats = [str(c) for c in labels.cat.categories]
    lab = np.where(labels.notna(), labels.astype(str), None)  # unlabelled genes match nothing
    soft = soft_assignments(adata, key)
    out = {}
    for c in clusters:
        members = np.flatnonzero(lab == c)
        if sort_by == "confidence" and soft is not None:
            members = members[np.argsort(-soft[members, cats.index(c)], kind="stable")]
        elif sort_by == "name":
            members = members[np.argsort(adata.var_names[members])]
        out[c] = members
    return out


def soft_assignments(adata: AnnData, key: str) -> np.ndarray | None:
    """``adata.varm[key + '_soft']`` with one column per category of ``adata.var[key]``.

    ``None`` when there are no soft assignments. Columns follow
    :func:`sngep._validate.soft_columns` (a category that numbers a column reads that column,
    so that subsetting genes, which drops emptied categories, keeps the right column).
    """
    soft_key = f"{key}_soft"
    if soft_key not in adata.varm:
        return None
    soft = np.asarray(adata.varm[soft_key], dtype=np.float64)
    if soft.ndim != 2:
        msg = f"adata.varm[{soft_key!r}] must be (n_vars, n_clusters), got shape {soft.shape}"
        raise ValueError(msg)
    cats = adata.var[key].astype("category").cat.categories
    return soft[:, soft_columns(cats, soft.shape[1], soft_key, key)]


def pick_clusters(adata: AnnData, key: str, clusters, limit: int | None = None) -> list[str]:
    """Validated cluster names: ``clusters`` or every non-empty one, largest first.

    Genes without a label (NaN) belong to no cluster; a single name is one cluster.
    """
    labels = adata.var[key].astype("category")
    cats = [str(c) for c in labels.cat.categories]
    if clusters is None:
        counts = labels[labels.notna()].astype(str).value_counts()
        clusters = [c for c in counts.index if counts[c] > 0][:limit]
        if not clusters:
            msg = f"no gene has a cluster label in adata.var[{key!r}]"
            raise ValueError(msg)
    elif isinstance(clusters, str | int | np.integer):
        clusters = [clusters]
    clusters = [str(c) for c in clusters]
    if not clusters:
        msg = "clusters is empty; pass None (every cluster) or at least one cluster name"
        raise ValueError(msg)
    missing = [c for c in clusters if c not in cats]
    if missing:
        msg = f"clusters {missing} not in adata.var[{key!r}] (categories: {cats})"
        raise ValueError(msg)
    return clusters


def cluster_inputs(
    adata: AnnData,
    key: str,
    clusters,
    images_key: str,
    denoised: bool,
    *,
    limit: int | None = None,
    sort_by: str = "confidence",
):
    """What the per-cluster image plots read: ``(images, mask, clusters, members_of)``."""
    from sngep import _keys
    from sngep._validate import get_gene_images

    require_var(adata, key, "sngep.tl.darlc")
    images, mask = get_gene_images(adata, images_key, stale="warn")
    if denoised:
        views = _keys.denoised(key)
        if views not in adata.varm:
            msg = f"adata.varm[{views!r}] not found; run sngep.tl.darlc(adata, key_added={key!r}) first"
            raise KeyError(msg)
        images = np.asarray(adata.varm[views], dtype=np.float32)
    clusters = pick_clusters(adata, key, clusters, limit=limit)
    return images, mask, clusters, ordered_members(adata, key, clusters, sort_by)


def blank(ax: Axes) -> None:
    """An image panel: no ticks, no frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
