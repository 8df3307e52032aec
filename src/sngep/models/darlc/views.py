"""Positive views for the contrastive branch (main 3.2.1): GAT-denoised or Gaussian-smoothed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sngep.models.darlc.config import DARLCConfig
from sngep.models.darlc.gat import denoise_gat, denoise_gks, spot_graph
from sngep.models.darlc.gat_image import ImageGAT, apply_gat_images, denoise_gat_images
from sngep.models.darlc.smoothing import TissueSmoother, in_chunks


def make_views(
    images: np.ndarray,
    mask: np.ndarray,
    config: DARLCConfig,
    *,
    device: torch.device,
    random_state: int = 0,
    show_progress_bar: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Denoised images, one per input image, and a small history dict.

    The pixel graph joins in-tissue pixels within ``gat_radius`` (the 8-neighbourhood by
    default, which contains the 6 hex neighbours of a Visium spot after the pixel mapping of
    :func:`sngep.pp.gene_images`).

    ``augment='gat'`` (main 3.2.1 as written): one graph per image, its pixels' values as
    node features (C = 1); the auto-encoder's weights are shared by all images and trained
    on random batches of them, then applied to each image (eq. 5;
    :mod:`sngep.models.darlc.gat_image`). ``'gat_spots'`` (STAGATE's reading): one graph
    of the spots with every gene as a node feature, trained once; its reconstruction,
    scattered back onto the grid, gives every gene's view. ``'gks'``: Gaussian kernel
    smoothing inside the tissue (ablation of Table 4). ``None``: the raw images themselves.
    """
    images = np.asarray(images, dtype=np.float32)
    if config.augment in (None, "gks"):  # nothing to train
        return denoise_new(images, mask, config, None), {}
    if config.augment == "gat":
        views, history = denoise_gat_images(
            images,
            mask,
            radius=config.gat_radius,
            hidden=config.gat_hidden,
            latent=config.gat_latent,
            steps=config.gat_epochs,
            lr=config.gat_lr,
            device=device,
            random_state=random_state,
            show_progress_bar=show_progress_bar,
        )
        return views, {"gat_loss": history["loss"], "denoiser": history["model"]}
    edge_index = spot_graph(
        np.argwhere(mask).astype(np.float64), method="radius", radius=config.gat_radius
    )
    recon, history = denoise_gat(
        images[:, mask].T,  # (n_spots, n_genes)
        edge_index,
        hidden=config.gat_hidden,
        latent=config.gat_latent,
        epochs=config.gat_epochs,
        lr=config.gat_lr,
        device=device,
        clip_negative=False,  # inputs are standardised (signed)
        random_state=random_state,
        show_progress_bar=show_progress_bar,
    )
    views = np.zeros_like(images)  # re-standardised by the caller
    views[:, mask] = np.asarray(recon, dtype=np.float32).T
    return views, {"gat_loss": list(map(float, history.get("loss", [])))}


def denoise_new(
    images: np.ndarray, mask: np.ndarray, config: DARLCConfig, denoiser: ImageGAT | None
) -> np.ndarray:
    """Views of images the model was not trained on, by the trained denoiser (eq. 5).

    Possible for ``augment='gat'`` (the per-image network is shared by all images), ``'gks'``
    and ``None``; STAGATE's ``'gat_spots'`` reconstructs the genes it was trained on only.
    """
    images = np.asarray(images, dtype=np.float32)
    if config.augment is None:
        return images.copy()
    if config.augment == "gks" and config.gks_detections > 0:
        return _smooth_per_image(images, mask, config.gks_detections)
    if config.augment == "gks":
        return denoise_gks(images, mask, sigma=config.gks_sigma).astype(np.float32)
    if config.augment == "gat" and denoiser is not None:
        return apply_gat_images(denoiser, images, mask, radius=config.gat_radius)
    msg = (
        f"augment={config.augment!r} cannot denoise new images; pass their views "
        "(views=...) or train with augment='gat' or 'gks'"
    )
    raise ValueError(msg)


def _smooth_per_image(images: np.ndarray, mask: np.ndarray, detections: float) -> np.ndarray:
    """Each image smoothed inside the tissue at its own sd (``gks_detections``: the
    bandwidth rule of :class:`~sngep.models.darlc.smoothing.TissueSmoother`)."""
    smoother = TissueSmoother(mask, detections=detections)
    return in_chunks(smoother, torch.from_numpy(images)).numpy()
