"""``sngep.pp.standardize_images``: every gene image to mean 0, sd 1 inside the tissue.

The pure array function :func:`standardize` (numpy only, no AnnData, no torch) is the one
place this scaling is defined; anything that needs standardised images imports it from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import get_gene_images

if TYPE_CHECKING:
    from anndata import AnnData

# An image whose in-tissue standard deviation is below this fraction of its largest absolute
# value is constant up to rounding (float32 carries ~7 significant digits) and maps to 0.
_CONSTANT_RTOL = 1e-6
_CHUNK = 4096  # images per block: bounds the float64 working copy


def standardize(images: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Standardise every image on its in-tissue pixels; numpy only.

    Parameters
    ----------
    images
        ``(n, H, W)`` stack.
    mask
        ``(H, W)`` boolean tissue mask (default: every pixel).

    Returns
    -------
    ``(n, H, W)`` float32: inside the mask each image has mean 0 and (population) standard
    deviation 1; outside the mask 0. Constant images (all-zero genes included, and images
    whose spread is below 1e-6 of their largest absolute value, i.e. rounding noise) are 0
    everywhere. Computed in float64.
    """
    x = np.asarray(images)
    if x.ndim != 3:
        msg = f"images must be (n, H, W), got shape {x.shape}"
        raise ValueError(msg)
    mask = np.ones(x.shape[1:], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != x.shape[1:]:
        msg = f"mask has shape {mask.shape}, images are {x.shape[1:]}"
        raise ValueError(msg)
    if not mask.any():
        msg = "the tissue mask holds no pixel: there is nothing to standardise"
        raise ValueError(msg)
    out = np.zeros(x.shape, dtype=np.float32)
    for s in range(0, x.shape[0], _CHUNK):
        inside = x[s : s + _CHUNK][:, mask].astype(np.float64)  # (chunk, n_pix)
        amax = np.max(np.abs(inside), axis=1)
        inside -= inside.mean(axis=1, keepdims=True)
        sd = np.sqrt(np.mean(inside * inside, axis=1))
        constant = sd <= _CONSTANT_RTOL * amax
        factor = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, sd))
        out[s : s + _CHUNK, mask] = inside * factor[:, None]
    return out


def standardize_images(
    adata: AnnData,
    *,
    images_key: str = _keys.GENE_IMAGES,
    key_added: str = _keys.GENE_IMAGES_STD,
    copy: bool = False,
) -> AnnData | None:
    """Standardise every gene image inside the tissue: mean 0, sd 1, 0 outside.

    Gene patterns are about *where* a gene is expressed, not how much; this removes the
    expression level. The result is the plain baseline to compare DARLC with (Leiden on
    the standardised in-tissue pixels)::

        sngep.pp.standardize_images(adata)
        sngep.tl.gene_leiden(adata, use_rep="gene_images_std", n_clusters=k)

    Parameters
    ----------
    adata
        AnnData with gene images from :func:`sngep.pp.gene_images` (or
        :func:`sngep.pp.images_from_array`).
    images_key
        ``.varm`` key of the images (their tissue mask is read from ``.uns[images_key]``).
    key_added
        ``.varm`` and ``.uns`` key of the result.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the copy with ``copy=True``; writes

    ``adata.varm[key_added]``
        ``(n_vars, H, W)`` float32 standardised images: in-tissue mean 0 and (population)
        standard deviation 1 per gene, 0 outside the tissue; constant images are 0.
    ``adata.uns[key_added]``
        ``{'shape', 'mask', 'n_obs', 'params'}``, the layout of ``adata.uns[images_key]``, so
        every ``images_key=`` argument (e.g. of :func:`sngep.tl.seed_similarity` or
        :func:`sngep.pl.gene_clusters`) accepts ``key_added``.
    """
    start = logg.info(f"standardising the images of adata.varm[{images_key!r}]")
    images, mask = get_gene_images(adata, images_key)
    adata = adata.copy() if copy else adata
    info = adata.uns.get(images_key, {})
    n_obs = info.get("n_obs") if isinstance(info, dict) else None
    adata.varm[key_added] = standardize(images, mask)
    adata.uns[key_added] = {
        "shape": np.array(images.shape[1:]),
        "mask": mask.copy(),
        "n_obs": int(adata.n_obs if n_obs is None else n_obs),
        "params": {"images_key": images_key},
    }
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    {key_added!r}, standardised images (adata.varm)\n"
            f"    {key_added!r}, shape and tissue mask (adata.uns)"
        ),
    )
    return adata if copy else None
