"""Image stacks (e.g. mass-spectrometry m/z images) -> AnnData in sngep's layout."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from sngep import _keys
from sngep._validate import check_finite


def images_from_array(
    images: np.ndarray,
    *,
    var_names: Sequence[str] | None = None,
    mask: np.ndarray | None = None,
    key_added: str = _keys.GENE_IMAGES,
) -> ad.AnnData:
    """Build an AnnData from a stack of images so it enters the same ``tl`` calls.

    Mass-spectrometry imaging gives one image per m/z value; any ``(n_images, H, W)``
    stack works. Every in-tissue pixel becomes an observation (a "spot"), every image a
    variable.

    Parameters
    ----------
    images
        ``(n_images, H, W)`` array, e.g. TIC-normalised ion images.
    var_names
        One name per image (e.g. ``"mz_885.55"``); default ``"image_0"``, ``"image_1"``, ...
    mask
        ``(H, W)`` boolean tissue mask. Default: pixels that are finite in every image and
        non-zero in at least one (background pixels of MSI data are empty or NaN).
        NaN inside a given mask is an error; values outside the mask are set to 0.
    key_added
        Key of the images in ``.varm``/``.uns``.

    Returns
    -------
    AnnData with ``n_obs`` = in-tissue pixels and ``n_vars`` = images:

    ``.X``
        ``(n_pixels, n_images)`` float32 pixel values.
    ``.obsm['spatial']``, ``.obs['array_row'/'array_col']``
        Pixel coordinates (``spatial`` is ``(x, y)`` = ``(col, row)``).
    ``.varm[key_added]``, ``.uns[key_added]``, ``.obsm['gene_image_pixel']``
        As written by :func:`sngep.pp.gene_images`.
    """
    stack = np.asarray(images, dtype=np.float32)
    if stack.ndim != 3:
        msg = f"images must be a (n_images, H, W) array, got shape {stack.shape}"
        raise ValueError(msg)
    n, h, w = stack.shape
    if n == 0 or h == 0 or w == 0:
        msg = f"images is empty: shape {stack.shape}"
        raise ValueError(msg)
    finite = np.isfinite(stack)
    if mask is None:
        mask = finite.all(axis=0) & (np.where(finite, stack, 0) != 0).any(axis=0)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (h, w):
            msg = f"mask must have shape {(h, w)}, got {mask.shape}"
            raise ValueError(msg)
        check_finite(stack[:, mask], "images inside the mask")
    if not mask.any():
        msg = "the tissue mask is empty: no pixel is finite and non-zero; pass mask="
        raise ValueError(msg)
    stack = np.where(mask[None], np.nan_to_num(stack, nan=0.0), 0.0).astype(np.float32)

    if var_names is None:
        var_names = [f"image_{i}" for i in range(n)]
    if isinstance(var_names, str):  # a string would be split into one name per character
        msg = f"var_names must be a sequence of names, one per image, got the string {var_names!r}"
        raise TypeError(msg)
    var_names = [str(v) for v in var_names]
    if len(var_names) != n:
        msg = f"var_names has {len(var_names)} names for {n} images"
        raise ValueError(msg)
    if len(set(var_names)) != n:
        msg = "var_names must be unique"
        raise ValueError(msg)

    rows, cols = np.nonzero(mask)
    obs = pd.DataFrame(
        {"array_row": rows, "array_col": cols},
        index=[f"pixel_{r}_{c}" for r, c in zip(rows, cols, strict=True)],
    )
    adata = ad.AnnData(X=stack[:, rows, cols].T.copy(), obs=obs, var=pd.DataFrame(index=var_names))
    adata.obsm[_keys.SPATIAL] = np.column_stack([cols, rows]).astype(np.float64)
    adata.obsm[_keys.GENE_IMAGE_PIXEL] = np.column_stack([rows, cols]).astype(np.int64)
    adata.varm[key_added] = stack
    adata.uns[key_added] = {
        "shape": np.array([h, w]),
        "mask": mask,
        "n_obs": int(adata.n_obs),
        "params": {"grid": "images", "n_images": n},
    }
    return adata
