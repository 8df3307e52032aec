"""Gaussian smoothing inside the tissue for the encoder's second input channel.

Not in the paper (``DARLCConfig.input_smoothing`` / ``input_detections``; both off in every
preset). The normalised convolution of :func:`sngep.models.darlc.gat.denoise_gks`,
``G * (x m) / G * m`` inside the tissue mask ``m`` and 0 outside, in torch, at one fixed
standard deviation or at one per image chosen from the image's sparsity: a Gaussian whose
effective area ``4 pi sigma^2`` holds ``n`` detected pixels on average, ``sigma = sqrt(n /
(4 pi d))`` with ``d`` the image's detection rate (the bandwidth of an adaptive kernel
estimate: sparse images are smoothed more, dense ones hardly at all).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

# per-image standard deviations are rounded to this grid (steps of sqrt 2); below
# GRID[0] / sqrt(2) an image is left as it is
GRID = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0)


def _radius(sigma: float) -> int:
    """Half-width of a Gaussian truncated at 4 sd, as :func:`scipy.ndimage.gaussian_filter`."""
    return int(4.0 * sigma + 0.5)


def detection_rate(x: torch.Tensor, tissue: torch.Tensor) -> torch.Tensor:
    """``(B,)`` share of each image's tissue pixels above the image's minimum there (a
    standardised image maps every zero count to that floor)."""
    inside = x[:, tissue]
    floor = inside.min(dim=1, keepdim=True).values
    tol = 1e-6 * floor.abs().clamp_min(1.0)
    return (inside > floor + tol).to(x.dtype).mean(dim=1)


class TissueSmoother(nn.Module):
    """Normalised Gaussian convolution inside ``mask``, at ``sigma`` pixels for every image
    (``sigma > 0``) or per image from its sparsity (``detections > 0``, module docstring).

    Each separable convolution is two products with banded ``(H, H)`` and ``(W, W)``
    Gaussian matrices (zeros beyond the image edge): on the CPU a batched matrix product
    is several times faster than a one-channel ``conv2d``. The kernels are truncated at
    4 sd, as :func:`scipy.ndimage.gaussian_filter`; every buffer is derived from the mask
    and not saved.
    """

    def __init__(self, mask: np.ndarray, *, sigma: float = 0.0, detections: float = 0.0):
        super().__init__()
        if (sigma > 0) == (detections > 0):
            msg = f"give one of sigma ({sigma}) and detections ({detections}), > 0"
            raise ValueError(msg)
        self.detections = float(detections)
        self.grid = (float(sigma),) if sigma > 0 else GRID
        m = torch.as_tensor(np.asarray(mask, dtype=bool))
        h, w = m.shape
        self.register_buffer("tissue", m, persistent=False)
        rows = torch.stack([_band(h, s) for s in self.grid])  # (G, H, H)
        cols = torch.stack([_band(w, s) for s in self.grid])  # (G, W, W)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        mf = m.float()
        den = rows @ mf @ cols.transpose(1, 2)  # (G, H, W): the kernel's mass in the tissue
        self.register_buffer("den", torch.where(mf > 0, den, torch.ones_like(den)), persistent=False)

    def grid_index(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` index into :data:`grid` of each image's sd; -1: left unsmoothed."""
        if self.detections == 0:
            return torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        d = detection_rate(x, self.tissue).clamp_min(1e-6)
        sigma = torch.sqrt(self.detections / (4 * math.pi * d))
        grid = torch.tensor(self.grid, dtype=x.dtype, device=x.device)
        idx = (sigma.log()[:, None] - grid.log()[None]).abs().argmin(dim=1)
        return torch.where(sigma < self.grid[0] / math.sqrt(2), -1, idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` -> smoothed inside the tissue, 0 outside."""
        m = self.tissue.to(x.dtype)
        which = self.grid_index(x)
        out = x * m
        smooth = which >= 0
        if smooth.any():
            w = which[smooth]
            rows, cols = self.rows[w].to(x.dtype), self.cols[w].to(x.dtype)
            conv = rows @ out[smooth] @ cols.transpose(1, 2)
            out = out.clone()
            out[smooth] = conv / self.den[w].to(x.dtype) * m
        return out


@torch.no_grad()
def in_chunks(fn, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """``fn`` (a smoothing) applied to ``x`` ``chunk`` images at a time: memory bounded on
    whole transcriptomes."""
    return torch.cat([fn(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])


def _band(n: int, sigma: float) -> torch.Tensor:
    """``(n, n)`` matrix of a 1-D Gaussian convolution (truncated at :func:`_radius`, zeros
    beyond the edges): ``(B @ v)_i = sum_j k(i - j) v_j``."""
    r = _radius(sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    offset = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # j - i
    band = torch.where(offset.abs() <= r, k[(offset + r).clamp(0, 2 * r)], 0.0)
    return band.float()
