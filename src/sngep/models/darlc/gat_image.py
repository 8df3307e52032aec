"""The graph-attention denoiser of main 3.2.1 as written: one graph per image (eqs. 1-5).

Main 3.2.1 builds, *for each image* ``X in R^{C x H x W}``, a graph whose nodes are the
pixels (joined to their neighbours within a radius) and whose node features are the pixel
vectors ``v in R^C``; the trained auto-encoder is then "applied to any given image X_i to
generate a smoothed image" (eq. 5). A gene image has one channel, so ``C = 1`` and the
network of main 4.1.5 is ``1-512-30`` per pixel, its weights shared by every image. Each
gene is smoothed on its own, from its own pixels: no gene's view borrows another gene's
pattern. (:mod:`sngep.models.darlc.gat` is the other reading, STAGATE's: one graph of spots
with every gene as a feature, ``C = n_genes``; there a sparse gene's view is rebuilt from
the 30-dimensional spot code that the abundant genes shape.)

The layers are those of :class:`sngep.models.darlc.gat.GATAutoencoder` (STAGATE's choices:
ELU, sigmoid attention normalised over each pixel's neighbours with the pixel itself
included, tied decoder weights and tied attention, mean squared error), specialised to
``C = 1`` and batched over images that share the pixel graph. With one input channel,
layer 1 is rank one: ``W1 h_j = x_j w1``, so its attention logits are
``sigmoid(x_j (a_src . w1) + x_i (a_dst . w1))`` and its output is ``(A x)_i w1``, where
``A`` (one per image: the attention depends on the image's values) is the row-stochastic
matrix of attention coefficients. The whole auto-encoder is

    x_hat = ELU((A z) W2^T) w1^T,    z = ELU((A x) w1) W2,

two attention-weighted neighbourhood averages with learned, value-dependent weights and a
learned intensity map between them: an adaptive smoother. The sigmoid keeps every logit in
(0, 1), so no coefficient exceeds e times another of the same pixel: the network cannot
learn the identity and always smooths.

The pixel graph joins the tissue pixels within ``radius`` of each other (the same graph as
:func:`sngep.models.darlc.gat.spot_graph` with ``method='radius'`` on the pixel
coordinates, each self loop once), so the message passing is a sum over a few fixed pixel
offsets (9 for the 8-neighbourhood): it runs as shifted slices of the image grid
(:class:`PixelGrid`), not as a gather and scatter over edges. Memory and time are
``O(B * H * W * hidden)`` for a batch of ``B`` images; training draws random batches for a
fixed number of steps, so its cost does not grow with the number of genes (the weights
are shared, as eq. 5 applies them to any image), and the views of all images are then
computed batch by batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sngep._progress import progress
from sngep.models.darlc._device import adam, resolve_device
from sngep.models.darlc.gat import _GAIN, _seed, check_optimiser

__all__ = ["ImageGAT", "PixelGrid", "apply_gat_images", "denoise_gat_images"]


class PixelGrid:
    """The pixel graph of a tissue mask as offsets on the image grid.

    Pixel ``i`` receives messages from ``i + o`` for every offset ``o`` with
    ``|o| <= radius`` (self included) that lands on a tissue pixel. ``valid[k]`` marks the
    pixels whose ``k``-th neighbour exists; pixels outside the mask keep their self loop
    only, so every softmax is defined (their outputs are set to 0).
    """

    def __init__(self, mask: np.ndarray, radius: float = 1.5, device: torch.device | str = "cpu"):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2 or not mask.any():
            msg = f"mask must be a non-empty (H, W) boolean array, got shape {mask.shape}"
            raise ValueError(msg)
        if not (np.isfinite(radius) and radius >= 0):
            msg = f"radius must be >= 0, got {radius!r}"
            raise ValueError(msg)
        r = int(math.floor(radius * (1 + 1e-9)))
        self.pad = r
        self.offsets = [
            (dr, dc)
            for dr in range(-r, r + 1)
            for dc in range(-r, r + 1)
            if dr * dr + dc * dc <= radius * radius * (1 + 1e-9)
        ]
        h, w = mask.shape
        padded = np.pad(mask, r)
        valid = np.stack(
            [mask & padded[r + dr : r + dr + h, r + dc : r + dc + w] for dr, dc in self.offsets]
        )
        valid[self.offsets.index((0, 0))] = True
        self.shape = (h, w)
        self.mask = torch.as_tensor(mask, device=device)
        self.valid = torch.as_tensor(valid, device=device)  # (K, H, W)
        self.n_edges = int(valid[:, mask].sum())

    def neighbours(self, v: torch.Tensor) -> torch.Tensor:
        """``(K, B, ..., H, W)``: each pixel's ``k``-th neighbour value (0 off the grid)."""
        r, (h, w) = self.pad, self.shape
        vp = F.pad(v, (r, r, r, r))
        return torch.stack(
            [vp[..., r + dr : r + dr + h, r + dc : r + dc + w] for dr, dc in self.offsets]
        )


class ImageGAT(nn.Module):
    """GAT auto-encoder ``1 -> hidden -> latent -> hidden -> 1`` applied to each image.

    Parameters
    ----------
    hidden, latent
        Widths (512 and 30 in main 4.1.5).
    generator
        Local :class:`torch.Generator` for the Xavier-normal initialisation (gain 1.414,
        as STAGATE); the global RNG is not used.

    Notes
    -----
    Parameters: ``w1`` ``(1, hidden)``, ``att_src`` and ``att_dst`` ``(hidden, 1)``, ``w2``
    ``(hidden, latent)``; the decoder owns none (``w2.T``, ``w1.T`` and layer 1's attention).
    """

    def __init__(
        self, hidden: int = 512, latent: int = 30, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        for name, val in (("hidden", hidden), ("latent", latent)):
            if int(val) != val or val < 1:
                msg = f"{name} must be a positive integer, got {val!r}"
                raise ValueError(msg)
        self.hidden, self.latent = int(hidden), int(latent)
        self.w1 = nn.Parameter(torch.empty(1, self.hidden))
        self.att_src = nn.Parameter(torch.empty(self.hidden, 1))
        self.att_dst = nn.Parameter(torch.empty(self.hidden, 1))
        self.w2 = nn.Parameter(torch.empty(self.hidden, self.latent))
        with torch.no_grad():
            for p in (self.w1, self.att_src, self.att_dst, self.w2):
                nn.init.xavier_normal_(p, gain=_GAIN, generator=generator)

    def attention(self, x: torch.Tensor, grid: PixelGrid) -> torch.Tensor:
        """Layer 1's coefficients ``(K, B, H, W)`` for images ``x`` ``(B, H, W)``.

        Eq. 2-3 with STAGATE's sigmoid: ``alpha_ij = softmax_j(sigmoid(a_src . W1 h_j +
        a_dst . W1 h_i))`` over the neighbours ``j = i + o_k`` of ``i``, ``W1 h_j = x_j w1``.
        """
        c_src = (self.w1 @ self.att_src).squeeze()
        c_dst = (self.w1 @ self.att_dst).squeeze()
        logits = torch.sigmoid(grid.neighbours(x) * c_src + x * c_dst)
        logits = logits.masked_fill(~grid.valid[:, None], -math.inf)
        return torch.softmax(logits, dim=0)

    @staticmethod
    def aggregate(alpha: torch.Tensor, v: torch.Tensor, grid: PixelGrid) -> torch.Tensor:
        """``(A v)_i = sum_j alpha_ij v_j``; ``v`` is ``(B, H, W)`` or ``(B, F, H, W)``."""
        a = alpha if v.ndim == 3 else alpha.unsqueeze(2)
        return (a * grid.neighbours(v)).sum(dim=0)

    def forward(self, x: torch.Tensor, grid: PixelGrid) -> torch.Tensor:
        """Reconstruct ``(B, H, W)`` images (0 outside the mask): eq. 1 in the encoder,
        the tied decoder."""
        b, h, w = x.shape
        x = x * grid.mask
        alpha = self.attention(x, grid)
        s1 = self.aggregate(alpha, x, grid)  # (A x): layer 1 is rank one, W1 h = x w1
        h1 = F.elu(s1.reshape(-1, 1) @ self.w1)  # eq. 1, (B H W, hidden)
        z = (h1 @ self.w2).reshape(b, h, w, self.latent).permute(0, 3, 1, 2)  # layer 2
        az = self.aggregate(alpha, z, grid).permute(0, 2, 3, 1).reshape(-1, self.latent)
        h3 = F.elu(az @ self.w2.t())  # tied weights and attention
        return (h3 @ self.w1.t()).reshape(b, h, w) * grid.mask


def denoise_gat_images(
    images: np.ndarray,
    mask: np.ndarray,
    *,
    radius: float = 1.5,
    hidden: int = 512,
    latent: int = 30,
    steps: int = 200,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    gradient_clipping: float = 5.0,
    device: torch.device | str = "cpu",
    random_state: int | None = 0,
    show_progress_bar: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train :class:`ImageGAT` on random batches of images and smooth every image (eq. 5).

    Parameters
    ----------
    images
        ``(n_images, H, W)`` images, used as given inside ``mask`` (0 is assumed outside).
    mask
        ``(H, W)`` tissue mask: the nodes of each image's graph.
    radius
        Pixels within this distance are joined (1.5: the 8-neighbourhood).
    hidden, latent
        Widths of the network.
    steps
        Optimiser steps, each on ``batch_size`` images drawn without replacement (a new
        permutation of the images whenever one is used up).
    lr, weight_decay, gradient_clipping
        Adam settings and gradient-norm clipping (STAGATE's).
    device
        Torch device, or ``"auto"`` (CUDA when available, else CPU).
    random_state
        Seed of the initialisation and of the batch order (local generators only).
    show_progress_bar
        A bar over the steps with the loss.

    Returns
    -------
    ``(views, history)``: the ``(n_images, H, W)`` float32 reconstruction (0 outside the
    mask) and ``{'loss': [MSE on the tissue pixels per step], 'n_edges': E per image, self
    loops included, 'model': the trained ImageGAT on the CPU}`` (for
    :func:`apply_gat_images` on further images).
    """
    x = np.asarray(images, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[1:] != mask.shape:
        msg = (
            f"images must be (n_images, H, W) with (H, W) = mask.shape {mask.shape}, got {x.shape}"
        )
        raise ValueError(msg)
    if not np.all(np.isfinite(x[:, mask])):
        msg = "images contain NaN or infinite values inside the mask; impute or drop them first"
        raise ValueError(msg)
    if int(steps) != steps or steps < 0 or int(batch_size) != batch_size or batch_size < 1:
        msg = f"need steps >= 0 and batch_size >= 1 (integers), got {steps!r}, {batch_size!r}"
        raise ValueError(msg)
    check_optimiser(lr, weight_decay, gradient_clipping)
    n_img = x.shape[0]
    dev = resolve_device(device)
    grid = PixelGrid(mask, radius, device=dev)
    seed = _seed(random_state)
    model = ImageGAT(hidden, latent, generator=torch.Generator().manual_seed(seed)).to(dev)
    xt = torch.from_numpy(np.where(mask, x, 0.0).astype(np.float32)).to(dev)
    opt = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(seed + 1)
    bs = min(int(batch_size), n_img)
    perm, pos, losses = torch.randperm(n_img, generator=order), 0, []
    bar = progress(
        range(int(steps)), desc="GAT denoiser", unit="step", disable=not show_progress_bar
    )
    model.train()
    for _ in bar:
        if pos + bs > n_img:
            perm, pos = torch.randperm(n_img, generator=order), 0
        xb = xt[perm[pos : pos + bs].to(dev)]
        pos += bs
        loss = F.mse_loss(model(xb, grid)[:, grid.mask], xb[:, grid.mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clipping)
        opt.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    bar.close()
    out = apply_gat_images(model, x, mask, radius=radius, batch_size=4 * bs)
    return out, {"loss": losses, "n_edges": grid.n_edges, "model": model.cpu().eval()}


@torch.no_grad()
def apply_gat_images(
    model: ImageGAT,
    images: np.ndarray,
    mask: np.ndarray,
    *,
    radius: float = 1.5,
    batch_size: int = 64,
) -> np.ndarray:
    """Eq. 5: the trained network smooths every image of ``images`` ``(n, H, W)``."""
    model.eval()
    dev = model.w1.device
    grid = PixelGrid(mask, radius, device=dev)
    x = torch.from_numpy(np.where(np.asarray(mask, bool), images, 0.0).astype(np.float32))
    out = np.empty(x.shape, dtype=np.float32)
    step = max(1, int(batch_size))
    for i in range(0, x.shape[0], step):
        out[i : i + step] = model(x[i : i + step].to(dev), grid).cpu().numpy()
    return out
