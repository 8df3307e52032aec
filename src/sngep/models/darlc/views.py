"""Positive views for the contrastive branch (main 3.2.1): GAT-denoised or Gaussian-smoothed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sngep.models.darlc.config import DARLCConfig
from sngep.models.darlc.gat import denoise_gat, denoise_gks, spot_graph


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

    ``augment='gat'``: the graph-attention auto-encoder is trained once on the spot graph
    (nodes = in-tissue pixels, features = all genes; edges join pixels within
    ``gat_radius``, i.e. the 8-neighbourhood by default, which contains the 6 hex neighbours
    of a Visium spot after the pixel mapping of :func:`sngep.pp.gene_images`), and its
    reconstruction is scattered back onto the grid (eq. 5). ``'gks'``: Gaussian kernel
    smoothing inside the tissue (ablation of Table 4). ``None``: the raw images themselves.
    """
    images = np.asarray(images, dtype=np.float32)
    if config.augment is None:
        return images.copy(), {}
    if config.augment == "gks":
        return denoise_gks(images, mask, sigma=config.gks_sigma).astype(np.float32), {}
    coords = np.argwhere(mask).astype(np.float64)
    edge_index = spot_graph(coords, method="radius", radius=config.gat_radius)
    x = images[:, mask].T  # (n_spots, n_genes)
    recon, history = denoise_gat(
        x,
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
