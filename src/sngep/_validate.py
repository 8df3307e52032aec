"""Input checks shared by ``pp``/``tl``/``pl``; every message names the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg

if TYPE_CHECKING:
    from anndata import AnnData


def is_int(x) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        msg = f"{what} contains {n_bad} NaN or infinite values; impute or drop them first"
        raise ValueError(msg)


def check_unique_var_names(adata: AnnData) -> None:
    """Raise ``ValueError`` if ``adata.var_names`` has duplicates (gene-level results need unique names)."""
    dup = adata.var_names[adata.var_names.duplicated()]
    if len(dup):
        examples = ", ".join(repr(str(g)) for g in dup.unique()[:5])
        msg = (
            f"adata.var_names has {len(dup)} duplicated names (e.g. {examples}); every gene needs "
            "its own name (gene-level results use them as labels): run "
            "adata.var_names_make_unique() first"
        )
        raise ValueError(msg)


_COUNTS_SAMPLE = 1_000_000  # values inspected by the raw-count check


def check_expression_values(x, what: str) -> None:
    """Log a warning when ``x`` (dense or sparse) looks like raw counts or holds negative values.

    Both may be intended (e.g. already-normalised integer data, or a deliberately centred
    layer), so they are warnings, not errors.
    """
    values = x.data if sp.issparse(x) else np.asarray(x).ravel()
    if values.size == 0:
        return
    vmin = float(values.min())
    if vmin < 0:
        logg.warning(
            f"{what} has negative values (min {vmin:.3g}), e.g. after sc.pp.scale. Gene images "
            "are meant to hold non-negative expression: pixels outside the tissue are 0, which "
            "for centred data means 'average', not 'no expression', so the tissue border becomes "
            "part of every pattern. Image the normalised, log-transformed values instead "
            "(before scaling, or from a layer with layer=...)."
        )
        return
    sample = values[:_COUNTS_SAMPLE]
    vmax = float(sample.max())
    if vmax > 1 and np.array_equal(sample, np.rint(sample)):
        logg.warning(
            f"{what} looks like raw counts (whole numbers up to {vmax:.0f}); images of raw "
            "counts mostly show sequencing depth. Run sc.pp.normalize_total(adata) and "
            "sc.pp.log1p(adata) first (or pass layer= with normalised values); ignore this if "
            "the values are meant to be counts."
        )


def get_gene_images(
    adata: AnnData,
    images_key: str = _keys.GENE_IMAGES,
    *,
    stale: Literal["raise", "warn"] = "raise",
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, mask)`` written by :func:`sngep.pp.gene_images`.

    ``images`` is ``(n_vars, H, W)`` float32, ``mask`` the ``(H, W)`` boolean tissue mask
    (all True if none was stored). If the spots of ``adata`` changed since the images were
    made (a different number of spots than recorded in ``adata.uns[images_key]['n_obs']``,
    e.g. after subsetting spots), raise a ``ValueError`` (``stale='raise'``) or log a warning
    (``stale='warn'``, for plots) that says to re-run :func:`sngep.pp.gene_images`.
    """
    if images_key not in adata.varm:
        msg = (
            f"adata.varm[{images_key!r}] not found; run sngep.pp.gene_images(adata) first "
            f"(available varm keys: {list(adata.varm.keys())})"
        )
        raise KeyError(msg)
    images = np.asarray(adata.varm[images_key])
    if images.ndim != 3:
        msg = f"adata.varm[{images_key!r}] must be (n_vars, H, W), got shape {images.shape}"
        raise ValueError(msg)
    check_finite(images, f"adata.varm[{images_key!r}]")
    info = adata.uns.get(images_key, {})
    mask = info.get("mask") if isinstance(info, dict) else None
    if mask is None:
        mask = np.ones(images.shape[1:], dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != images.shape[1:]:
        msg = f"adata.uns[{images_key!r}]['mask'] has shape {mask.shape}, images are {images.shape[1:]}"
        raise ValueError(msg)
    _check_spots_unchanged(adata, images_key, info, stale)
    return images.astype(np.float32, copy=False), mask


def _check_spots_unchanged(adata: AnnData, images_key: str, info, stale: str) -> None:
    """Compare the spots of ``adata`` with those the images were made from.

    Only a spot-level AnnData is checked: one that carries the spots' pixels
    (``obsm['gene_image_pixel']``, which is subset together with the spots); a gene-level
    object (``tl.gene_adata(...).T``) or images without a record are left alone.
    """
    n_made = info.get("n_obs") if isinstance(info, dict) else None
    if n_made is None or _keys.GENE_IMAGE_PIXEL not in adata.obsm:
        return
    if int(n_made) == adata.n_obs:
        return
    msg = (
        f"adata has {adata.n_obs} spots but adata.varm[{images_key!r}] was made from "
        f"{int(n_made)} (spots were subset or added since); re-run sngep.pp.gene_images(adata) "
        "(and any step built on its images, e.g. sngep.pp.standardize_images) so that the "
        "images show these spots"
    )
    if stale == "warn":
        logg.warning(msg)
        return
    raise ValueError(msg)


def check_n_genes(n: int, minimum: int = 2, what: str = "genes") -> None:
    """Raise ``ValueError`` when fewer than ``minimum`` genes (images) are given."""
    if n < minimum:
        msg = f"need at least {minimum} {what}, got {n}"
        raise ValueError(msg)


def soft_columns(categories, n_columns: int, soft_key: str, key: str) -> list[int]:
    """Column of ``adata.varm[soft_key]`` (soft assignments) for each label category.

    ``tl.darlc`` names its clusters ``'0'`` .. ``'K-1'`` after their column, and subsetting
    genes drops the categories of clusters left without genes, so a category that is the
    number of a column is read from that column; other labels are matched by position, which
    needs one column per category. Raise ``ValueError`` when neither applies.
    """
    cats = [str(c) for c in categories]
    if all(c.isdecimal() and int(c) < n_columns for c in cats):
        return [int(c) for c in cats]
    if len(cats) == n_columns:
        return list(range(n_columns))
    msg = (
        f"adata.varm[{soft_key!r}] has {n_columns} columns but adata.var[{key!r}] has "
        f"{len(cats)} categories ({cats[:5]}{', ...' if len(cats) > 5 else ''}) that do not "
        "name its columns; re-run the clustering or delete the soft assignments "
        f"(del adata.varm[{soft_key!r}])"
    )
    raise ValueError(msg)
