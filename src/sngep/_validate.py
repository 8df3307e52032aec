"""Input checks shared by ``pp``/``tl``/``pl``; every message names the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys

if TYPE_CHECKING:
    from anndata import AnnData


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        msg = f"{what} contains {n_bad} NaN or infinite values; impute or drop them first"
        raise ValueError(msg)


def get_gene_images(
    adata: AnnData, images_key: str = _keys.GENE_IMAGES
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, mask)`` written by :func:`sngep.pp.gene_images`.

    ``images`` is ``(n_vars, H, W)`` float32, ``mask`` the ``(H, W)`` boolean tissue mask
    (all True if none was stored).
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
    return images.astype(np.float32, copy=False), mask


def check_n_genes(n: int, minimum: int = 2, what: str = "genes") -> None:
    """Raise ``ValueError`` when fewer than ``minimum`` genes (images) are given."""
    if n < minimum:
        msg = f"need at least {minimum} {what}, got {n}"
        raise ValueError(msg)
