"""Spatial expression -> one image per gene (main text 4.1.1-4.1.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import (
    check_expression_values,
    check_finite,
    check_unique_var_names,
    is_int,
)

if TYPE_CHECKING:
    from anndata import AnnData

Grid = Literal["auto", "visium", "array", "bin"]


def gene_images(
    adata: AnnData,
    *,
    layer: str | None = None,
    spatial_key: str = _keys.SPATIAL,
    grid: Grid = "auto",
    resolution: float | None = None,
    shape: tuple[int, int] | None = None,
    pad_to: int | None = None,
    key_added: str = _keys.GENE_IMAGES,
    copy: bool = False,
) -> AnnData | None:
    """Turn every gene's spatial expression into an image.

    Each spot is mapped to one pixel of a common grid; pixels without a spot are
    outside the tissue and hold 0. The mapping is computed once and applied to all genes
    with a single sparse product (no per-gene loop).

    Parameters
    ----------
    adata
        Spots x genes. Expression is read from ``adata.X`` or ``adata.layers[layer]``
        (dense or sparse); use the values you want imaged (e.g. normalised, log1p). Gene
        names must be unique. A warning is logged when the values look like raw counts
        (whole numbers) or are negative (e.g. after :func:`scanpy.pp.scale`).
    layer
        Layer to read instead of ``.X``.
    spatial_key
        ``adata.obsm`` key of the spot coordinates (``(x, y)``, scanpy's convention), used
        when ``grid='bin'``.
    grid
        How spots become pixels:

        ``'visium'``
            Hexagonal Visium lattice from ``obs['array_row']``/``obs['array_col']``:
            pixel ``(row - min_row, ceil((col - min_col) / 2))``. Collision-free because on
            the hex lattice the columns of one row share a parity; a full capture area gives
            78 x 65 pixels.
        ``'array'``
            Square integer arrays (e.g. classic Spatial Transcriptomics) from
            ``obs['array_row']``/``obs['array_col']``: pixel ``(row - min, col - min)``.
        ``'bin'``
            Arbitrary coordinates in ``obsm[spatial_key]`` binned to a square grid of pixel size
            ``resolution``; spots sharing a pixel are averaged.
        ``'auto'``
            ``'visium'`` when array coordinates exist and follow the hex parity rule,
            ``'array'`` when they exist otherwise and are collision-free, else ``'bin'``.
    resolution
        Pixel size for ``grid='bin'``, in the units of ``obsm[spatial_key]``. Default: the
        median nearest-neighbour distance between spots.
    shape
        Force the image shape ``(H, W)``; must hold every spot (images are padded, never
        cropped).
    pad_to
        Pad ``H`` and ``W`` up to a multiple of this (e.g. a ViT patch size).
    key_added
        Key for ``.varm``/``.uns``.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy when ``copy=True``); writes

    ``adata.varm[key_added]``
        ``(n_vars, H, W)`` float32 images, 0 outside the tissue.
    ``adata.uns[key_added]``
        ``{'shape': array([H, W]), 'mask': (H, W) bool tissue mask, 'n_obs': int, 'params':
        {...}}``; ``n_obs``, the number of spots imaged, lets the ``tl`` functions notice
        when spots were subset afterwards (they then ask to re-run this function).
    ``adata.obsm['gene_image_pixel']``
        ``(n_obs, 2)`` int ``(row, col)`` pixel of every spot.
    """
    adata = adata.copy() if copy else adata
    start = logg.info("computing gene images")
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = f"adata is empty ({adata.n_obs} spots x {adata.n_vars} genes)"
        raise ValueError(msg)
    check_unique_var_names(adata)
    shape, pad_to = _check_shape_and_pad(shape, pad_to)
    x = _expression(adata, layer)
    check_expression_values(x, "adata.X" if layer is None else f"adata.layers[{layer!r}]")

    grid_used = _resolve_grid(adata, grid, spatial_key)
    if grid_used == "bin":
        pixel, resolution = _bin_pixels(adata, spatial_key, resolution)
    else:
        pixel = _array_pixels(adata, grid_used)
    h, w = (int(pixel[:, 0].max()) + 1, int(pixel[:, 1].max()) + 1)
    if shape is not None:
        if shape[0] < h or shape[1] < w:
            msg = f"shape={tuple(shape)} is smaller than the spots need ({h}, {w}); images are never cropped"
            raise ValueError(msg)
        h, w = int(shape[0]), int(shape[1])
    if pad_to is not None:
        h, w = -(-h // pad_to) * pad_to, -(-w // pad_to) * pad_to
    _check_image_size(adata.n_vars, h, w, grid_used)

    flat = pixel[:, 0].astype(np.int64) * w + pixel[:, 1]
    occupied, spot_to_pixel = np.unique(flat, return_inverse=True)
    # Averaging operator: (n_occupied_pixels, n_obs), row p averages the spots in pixel p.
    counts = np.bincount(spot_to_pixel, minlength=occupied.size)
    avg = sp.csr_matrix(
        (1.0 / counts[spot_to_pixel], (spot_to_pixel, np.arange(adata.n_obs))),
        shape=(occupied.size, adata.n_obs),
        dtype=np.float32,
    )
    per_pixel = avg @ x  # (n_occupied, n_vars), sparse or dense like x
    per_pixel = per_pixel.toarray() if sp.issparse(per_pixel) else np.asarray(per_pixel)
    images = np.zeros((adata.n_vars, h * w), dtype=np.float32)
    images[:, occupied] = per_pixel.T
    mask = np.zeros(h * w, dtype=bool)
    mask[occupied] = True

    adata.varm[key_added] = images.reshape(adata.n_vars, h, w)
    adata.obsm[_keys.GENE_IMAGE_PIXEL] = pixel.astype(np.int64)
    params = {
        "grid": grid_used,
        "layer": layer if layer is not None else "X",
        "spatial_key": spatial_key,
        "pad_to": pad_to if pad_to is not None else 0,
        "n_spots_per_pixel_max": int(counts.max()),
    }
    if resolution is not None:
        params["resolution"] = float(resolution)
    adata.uns[key_added] = {
        "shape": np.array([h, w]),
        "mask": mask.reshape(h, w),
        "n_obs": int(adata.n_obs),  # lets tl calls notice spots subset after this call
        "params": params,
    }
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    {key_added!r}, {adata.n_vars} images of {h} x {w} (adata.varm)\n"
            f"    {key_added!r}, shape and tissue mask (adata.uns)\n"
            f"    {_keys.GENE_IMAGE_PIXEL!r}, pixel of each spot (adata.obsm)"
        ),
    )
    return adata if copy else None


# an image stack above this many bytes is refused before it is allocated (float32)
_MAX_BYTES = 16 * 2**30


def _check_image_size(n_vars: int, h: int, w: int, grid: str) -> None:
    """Refuse an image stack that would not fit in memory (a ``resolution`` far below the
    spot spacing makes one image of millions of pixels, almost all empty)."""
    n_bytes = 4 * n_vars * h * w
    if n_bytes > _MAX_BYTES:
        hint = " (pass a larger resolution=)" if grid == "bin" else ""
        msg = (
            f"{n_vars} images of {h} x {w} pixels would take {n_bytes / 2**30:.0f} GiB"
            f"{hint}; images above {_MAX_BYTES / 2**30:.0f} GiB are refused"
        )
        raise ValueError(msg)


def _check_shape_and_pad(shape, pad_to) -> tuple[tuple[int, int] | None, int | None]:
    """``shape`` as two positive ints and ``pad_to`` as a positive int (or ``None``), checked."""
    if shape is not None:
        try:
            ok = len(shape) == 2 and all(is_int(s) and s >= 1 for s in shape)
        except TypeError:  # not a sequence
            ok = False
        if not ok:
            msg = f"shape must be None or two positive integers (H, W), got {shape!r}"
            raise ValueError(msg)
        shape = (int(shape[0]), int(shape[1]))
    if pad_to is not None:
        if not is_int(pad_to) or pad_to < 1:
            msg = f"pad_to must be None or a positive integer, got {pad_to!r}"
            raise ValueError(msg)
        pad_to = int(pad_to)
    return shape, pad_to


def _expression(adata: AnnData, layer: str | None):
    if layer is not None and layer not in adata.layers:
        msg = f"layer {layer!r} not in adata.layers (available: {list(adata.layers.keys())})"
        raise KeyError(msg)
    x = adata.X if layer is None else adata.layers[layer]
    if x is None:
        msg = "adata.X is empty; pass layer= to read expression from a layer"
        raise ValueError(msg)
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
        check_finite(x.data, "expression")
    else:
        x = np.asarray(x, dtype=np.float32)
        check_finite(x, "expression")
    return x


def _array_coords(adata: AnnData) -> tuple[np.ndarray, np.ndarray] | None:
    if "array_row" not in adata.obs or "array_col" not in adata.obs:
        return None
    row = pd.to_numeric(adata.obs["array_row"], errors="coerce").to_numpy(dtype=float)
    col = pd.to_numeric(adata.obs["array_col"], errors="coerce").to_numpy(dtype=float)
    if not (np.all(np.isfinite(row)) and np.all(np.isfinite(col))):
        msg = "obs['array_row'/'array_col'] contain missing or non-numeric values"
        raise ValueError(msg)
    if not (np.allclose(row, np.round(row)) and np.allclose(col, np.round(col))):
        return None
    return np.round(row).astype(np.int64), np.round(col).astype(np.int64)


def _is_hex(row: np.ndarray, col: np.ndarray) -> bool:
    """Visium lattice: every spot has (row + col) of one parity and columns step by 2 in a row."""
    parity = (row + col) % 2
    if np.unique(parity).size != 1:
        return False
    keys = row * (col.max() + 2) + col
    return np.unique(keys).size == row.size and np.unique(col % 2).size == 2


def _resolve_grid(adata: AnnData, grid: str, spatial_key: str) -> str:
    if grid not in ("auto", "visium", "array", "bin"):
        msg = f"grid must be 'auto', 'visium', 'array' or 'bin', got {grid!r}"
        raise ValueError(msg)
    arr = _array_coords(adata)
    if grid in ("visium", "array"):
        if arr is None:
            msg = f"grid={grid!r} needs integer obs['array_row'] and obs['array_col']; use grid='bin' for coordinates"
            raise KeyError(msg)
        return grid
    if grid == "auto" and arr is not None:
        row, col = arr
        if _is_hex(row, col):
            return "visium"
        if np.unique(row * (col.max() - col.min() + 1) + (col - col.min())).size == row.size:
            return "array"
    if spatial_key not in adata.obsm:
        msg = (
            f"no spatial coordinates: adata.obsm[{spatial_key!r}] is missing and obs has no usable "
            "'array_row'/'array_col'; add coordinates (e.g. sc.read_visium / squidpy readers set them)"
        )
        raise KeyError(msg)
    return "bin"


def _array_pixels(adata: AnnData, grid: str) -> np.ndarray:
    row, col = _array_coords(adata)
    r = row - row.min()
    c = col - col.min()
    if grid == "visium":
        c = -(-c // 2)  # ceil(c / 2)
    pixel = np.column_stack([r, c])
    if np.unique(pixel[:, 0] * (pixel[:, 1].max() + 1) + pixel[:, 1]).size != pixel.shape[0]:
        msg = (
            f"grid={grid!r}: several spots map to the same pixel; the array coordinates are not a "
            "Visium hex lattice / square array (use grid='bin' to average spots per pixel)"
        )
        raise ValueError(msg)
    return pixel


def _bin_pixels(
    adata: AnnData, spatial_key: str, resolution: float | None
) -> tuple[np.ndarray, float]:
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        msg = f"adata.obsm[{spatial_key!r}] must be (n_obs, 2), got shape {coords.shape}"
        raise ValueError(msg)
    coords = coords[:, :2]
    check_finite(coords, f"adata.obsm[{spatial_key!r}]")
    if resolution is None:
        if adata.n_obs < 2:
            msg = "cannot infer the pixel size from a single spot; pass resolution="
            raise ValueError(msg)
        dist, _ = cKDTree(coords).query(coords, k=2)
        nn = dist[:, 1]
        resolution = float(np.median(nn[nn > 0])) if np.any(nn > 0) else 1.0
    if not resolution > 0:
        msg = f"resolution must be positive, got {resolution}"
        raise ValueError(msg)
    # obsm['spatial'] is (x, y): rows follow y, columns follow x.
    scaled = (coords - coords.min(axis=0)) / resolution
    pixel = np.column_stack([np.round(scaled[:, 1]), np.round(scaled[:, 0])]).astype(np.int64)
    return pixel, resolution
