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
import torch.nn.functional as F
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

    The kernels are truncated at 4 sd, as :func:`scipy.ndimage.gaussian_filter`; all
    buffers are derived from the mask and not saved.
    """

    def __init__(self, mask: np.ndarray, *, sigma: float = 0.0, detections: float = 0.0):
        super().__init__()
        if (sigma > 0) == (detections > 0):
            msg = f"give one of sigma ({sigma}) and detections ({detections}), > 0"
            raise ValueError(msg)
        self.detections = float(detections)
        self.grid = (float(sigma),) if sigma > 0 else GRID
        radii = torch.tensor([_radius(s) for s in self.grid])
        t = torch.arange(-int(radii.max()), int(radii.max()) + 1, dtype=torch.float64)
        kernels = torch.stack([torch.exp(-0.5 * (t / s) ** 2) for s in self.grid])
        kernels = kernels * (t.abs() <= radii[:, None])  # each truncated at its own radius
        self.register_buffer("kernels", (kernels / kernels.sum(1, keepdim=True)).float(), persistent=False)
        m = torch.as_tensor(np.asarray(mask, dtype=bool))
        self.register_buffer("tissue", m, persistent=False)
        mf = m.float()[None].expand(len(self.grid), -1, -1)
        den = self._convolve(mf, torch.arange(len(self.grid)))
        self.register_buffer("den", torch.where(mf > 0, den, torch.ones_like(den)), persistent=False)

    def _convolve(self, x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` images, each convolved with its kernel ``which`` (zeros beyond the
        edge): one grouped convolution per axis."""
        k = self.kernels[which].to(x.dtype)[:, None, None, :]  # (B, 1, 1, K)
        r = (k.shape[-1] - 1) // 2
        y = F.conv2d(x[None], k, padding=(0, r), groups=x.shape[0])
        return F.conv2d(y, k.transpose(-1, -2), padding=(r, 0), groups=x.shape[0])[0]

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
            conv = self._convolve(out[smooth], w) / self.den[w].to(x.dtype) * m
            out = out.clone()
            out[smooth] = conv
        return out
