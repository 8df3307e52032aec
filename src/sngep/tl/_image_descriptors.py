"""Image descriptors of the seeding similarity (supp. 1.2, eqs. 20-24), vectorised over genes.

Every filter runs on a ``(n_genes, H, W)`` stack along axes 1 and 2 only. ``scipy.ndimage.sobel``
and ``scipy.ndimage.laplace`` cannot be used on the stack: they differentiate (or smooth) along
*every* axis, the gene axis included, so the separable 1-D kernels are applied explicitly.

Border convention: a gene image is 0 outside the tissue (``pp.gene_images``), and the grid is
only the bounding box of the spots, so everything beyond the grid is out-of-tissue as well.
The descriptors are therefore computed on the *infinite zero plane*: the caller pads the stack
with :func:`margin` zeros on every side and every filter uses ``mode='constant'`` (zero) padding.
With that margin the descriptor values on the grid are exact, and independent of how much zero
padding the grid already carries (tested).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage as ndi

#: Names accepted by ``seed_similarity(descriptors=...)``, in the order of supp. eq. 25.
DESCRIPTORS: tuple[str, ...] = (
    "mean_1",  # A(1): the Gaussian-smoothed image itself (eq. 21/22 with k = 1)
    "mean_3",  # A(3): 3 x 3 mean pooling (eq. 22)
    "mean_5",  # A(5): 5 x 5 mean pooling
    "std_3",  # S(3): 3 x 3 standard-deviation pooling (eq. 23)
    "std_5",  # S(5): 5 x 5 standard-deviation pooling
    "gradient_magnitude",  # G: Sobel gradient magnitude
    "gradient_orientation",  # Theta: Sobel gradient orientation, arctan2(d/drow, d/dcol)
    "laplacian",  # L: gradient divergence (5-point Laplacian)
    "canny",  # C: gradient continuity (binary Canny edge map)
)

#: Canny hysteresis thresholds on the Sobel magnitude of the image scaled to max |value| = 1
#: (the "grey-scale level" of supp. 1.2); skimage's defaults for float images.
CANNY_THRESHOLDS: tuple[float, float] = (0.1, 0.2)

_GAUSS_TRUNCATE = 4.0  # scipy's default; the kernel size d of eq. 20 is 2 * radius + 1


def gaussian_radius(sigma: float) -> int:
    """Radius of scipy's truncated Gaussian kernel (0 when ``sigma == 0``)."""
    return int(_GAUSS_TRUNCATE * sigma + 0.5) if sigma > 0 else 0


def margin(sigma: float) -> int:
    """Zero padding needed so that every descriptor on the grid sees the infinite zero plane.

    The smoothed image spreads ``gaussian_radius`` pixels beyond the grid; the widest
    descriptor (5 x 5 pooling) reads 2 pixels further; Canny blanks the outermost pixel
    of its input. Beyond that margin the smoothed image is exactly zero.
    """
    return gaussian_radius(sigma) + 3


def _sobel(x: np.ndarray, axis: int) -> np.ndarray:
    """Sobel derivative along image ``axis`` (1 = rows, 2 = columns) of a ``(n, H, W)`` stack."""
    other = 1 if axis == 2 else 2
    d = ndi.correlate1d(x, [-1.0, 0.0, 1.0], axis=axis, mode="constant")
    return ndi.correlate1d(d, [1.0, 2.0, 1.0], axis=other, mode="constant")


def _laplacian(x: np.ndarray) -> np.ndarray:
    """5-point Laplacian over the two image axes of a ``(n, H, W)`` stack."""
    out = ndi.correlate1d(x, [1.0, -2.0, 1.0], axis=1, mode="constant")
    out += ndi.correlate1d(x, [1.0, -2.0, 1.0], axis=2, mode="constant")
    return out


def _mean_pool(x: np.ndarray, k: int) -> np.ndarray:
    """K x k window mean centred on each pixel (eq. 22, 24)."""
    if k == 1:
        return x
    return ndi.uniform_filter(x, size=(1, k, k), mode="constant")


def _std_pool(x: np.ndarray, k: int) -> np.ndarray:
    """K x k window (population) standard deviation centred on each pixel (eq. 23, 24)."""
    m = ndi.uniform_filter(x, size=(1, k, k), mode="constant")
    m2 = ndi.uniform_filter(x * x, size=(1, k, k), mode="constant")
    m2 -= m * m
    np.maximum(m2, 0.0, out=m2)  # cancellation can leave tiny negatives
    return np.sqrt(m2, out=m2)


def _canny(x: np.ndarray, grid: tuple[slice, slice]) -> np.ndarray:
    """Binary Canny edges of each image (skimage is 2-D only: a loop over genes).

    The input is already Gaussian-smoothed (eqs. 20-21, Canny's first step), so Canny's own
    smoothing is switched off (``sigma=0``). Each image is scaled to max |value| = 1 on the
    grid first, so that the fixed thresholds do not depend on the expression scale.
    """
    from skimage.feature import canny

    low, high = CANNY_THRESHOLDS
    out = np.zeros(x.shape, dtype=np.float64)
    for i in range(x.shape[0]):
        scale = float(np.max(np.abs(x[i][grid])))
        if scale > 0:
            out[i] = canny(x[i] / scale, sigma=0.0, low_threshold=low, high_threshold=high)
    return out


def iter_descriptors(
    padded: np.ndarray,
    names: Sequence[str],
    *,
    sigma: float,
    grid: tuple[slice, slice],
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, map)`` for each requested descriptor of a padded ``(n, H', W')`` stack.

    ``padded`` must carry at least :func:`margin` zeros on each side of the grid; ``grid`` is
    the slice pair of the original grid inside it. Maps are float64 ``(n, H', W')``.
    """
    x = np.asarray(padded, dtype=np.float64)
    smoothed = (
        ndi.gaussian_filter(x, sigma=(0.0, sigma, sigma), mode="constant", truncate=_GAUSS_TRUNCATE)
        if sigma > 0
        else x
    )
    gx = gy = None
    for name in names:
        if name.startswith("mean_"):
            yield name, _mean_pool(smoothed, int(name[5:]))
        elif name.startswith("std_"):
            yield name, _std_pool(smoothed, int(name[4:]))
        elif name in ("gradient_magnitude", "gradient_orientation"):
            if gx is None:
                gx, gy = _sobel(smoothed, axis=2), _sobel(smoothed, axis=1)
            if name == "gradient_magnitude":
                yield name, np.hypot(gx, gy)
            else:
                # Exactly flat regions give gx = gy = 0 exactly, hence orientation 0.
                yield name, np.arctan2(gy, gx)
        elif name == "laplacian":
            yield name, _laplacian(smoothed)
        elif name == "canny":
            yield name, _canny(smoothed, grid)
        else:  # pragma: no cover - names are validated by the caller
            msg = f"unknown descriptor {name!r}"
            raise ValueError(msg)
