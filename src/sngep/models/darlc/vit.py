"""Module I of DARLC: ViT encoder, MAE decoder, contrastive heads (main 3.2.2, 4.1.5).

Shapes used throughout (``p`` = patch size):

- images ``x``: ``(B, H, W)`` float, one channel (``(B, 1, H, W)`` is accepted too);
- padded images: ``(B, Hp, Wp)`` with ``Hp = h * p``, ``Wp = w * p``,
  ``h = ceil(H / p)``, ``w = ceil(W / p)``; padding is zeros at the bottom/right, never a crop;
- patches: ``(B, L, p * p)`` with ``L = h * w`` tokens in row-major order (token
  ``l = r * w + c`` covers rows ``r*p:(r+1)*p`` and columns ``c*p:(c+1)*p``);
- CLS embedding: ``(B, embed_dim)``; contrastive embedding ``e``: ``(B, proj_dim)``.

:class:`ModuleI` bundles everything the trainer needs: ``mae_loss`` (eq. 7), ``embed``
(``e_i`` of eq. 9, fed to the projection head of eq. 12), ``target_embed`` (``e_bar_i`` of
eq. 9) and ``momentum_update`` (eq. 8).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sngep.models.darlc.smoothing import TissueSmoother

__all__ = [
    "ContrastiveHead",
    "MAEDecoder",
    "ModuleI",
    "ProjectionHead",
    "TransformerBlock",
    "ViTEncoder",
    "get_1d_sincos_pos_embed",
    "get_2d_sincos_pos_embed",
    "masked_patch_loss",
    "patchify",
    "random_masking",
    "unpatchify",
]


# --------------------------------------------------------------------------------------
# positional embedding, patches, masking (pure functions)
# --------------------------------------------------------------------------------------
def get_1d_sincos_pos_embed(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    """1-D sin-cos embedding of positions ``pos`` (MAE's ``get_1d_sincos_pos_embed_from_grid``).

    Parameters
    ----------
    embed_dim
        Even output dimension ``d``.
    pos
        Positions of any shape; flattened to ``M`` values.

    Returns
    -------
    ``(M, d)`` float64 array: ``[sin(pos * omega_j), cos(pos * omega_j)]`` with
    ``omega_j = 10000 ** (-j / (d / 2))``, ``j = 0 .. d/2 - 1``.
    """
    if embed_dim % 2 != 0:
        msg = f"embed_dim must be even for a sin-cos embedding, got {embed_dim}"
        raise ValueError(msg)
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", np.asarray(pos, dtype=np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    """Fixed 2-D sin-cos positional embedding on a ``grid_h x grid_w`` token grid.

    Same construction as MAE's ``get_2d_sincos_pos_embed`` but for a rectangular grid:
    the first ``embed_dim / 2`` dimensions encode the column index, the last
    ``embed_dim / 2`` the row index, each with :func:`get_1d_sincos_pos_embed`.

    Returns
    -------
    ``(grid_h * grid_w, embed_dim)`` float64 array, rows in row-major token order
    (token ``r * grid_w + c``). No row for the CLS token (it gets no positional embedding).
    """
    if embed_dim % 4 != 0:
        msg = f"embed_dim must be a multiple of 4 for a 2-D sin-cos embedding, got {embed_dim}"
        raise ValueError(msg)
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    emb_col = get_1d_sincos_pos_embed(embed_dim // 2, cols)
    emb_row = get_1d_sincos_pos_embed(embed_dim // 2, rows)
    return np.concatenate([emb_col, emb_row], axis=1)


def _pad_to_multiple(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Zero-pad ``(B, H, W)`` at the bottom/right to multiples of ``patch_size``."""
    h, w = images.shape[-2:]
    pad_h = (-h) % patch_size
    pad_w = (-w) % patch_size
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return images


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut ``(B, H, W)`` images into ``(B, L, p * p)`` patches (zero-padding first).

    Token order is row-major over the ``ceil(H/p) x ceil(W/p)`` grid; pixels inside a patch
    are row-major too. Inverse: :func:`unpatchify`.
    """
    x = _pad_to_multiple(images, patch_size)
    b, hp, wp = x.shape
    p = patch_size
    h, w = hp // p, wp // p
    x = x.reshape(b, h, p, w, p).permute(0, 1, 3, 2, 4)
    return x.reshape(b, h * w, p * p)


def unpatchify(patches: torch.Tensor, patch_size: int, grid_shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, L, p * p)`` -> padded images ``(B, h * p, w * p)``."""
    b, n_tokens, pp = patches.shape
    h, w = grid_shape
    p = patch_size
    if n_tokens != h * w or pp != p * p:
        msg = f"patches of shape {tuple(patches.shape)} do not match grid {grid_shape}, p={p}"
        raise ValueError(msg)
    x = patches.reshape(b, h, w, p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(b, h * p, w * p)


def random_masking(
    batch_size: int,
    n_tokens: int,
    mask_ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MAE per-sample random masking.

    Uniform noise ``(B, L)`` is drawn from ``generator`` (on the generator's device, then moved
    to ``device``), and each row's ``argsort`` is a random permutation of the tokens. The first
    ``n_keep = round((1 - mask_ratio) * L)`` tokens stay visible, clipped to ``[1, L - 1]`` when
    ``mask_ratio > 0`` so that at least one token is seen and at least one is masked.

    Returns
    -------
    ``(ids_keep, ids_masked)``: long tensors ``(B, n_keep)`` and ``(B, L - n_keep)``, each
    row sorted ascending.
    """
    if not 0.0 < mask_ratio < 1.0:
        msg = f"mask_ratio must lie in (0, 1), got {mask_ratio}"
        raise ValueError(msg)
    if n_tokens < 2:
        msg = f"masking needs at least 2 tokens, got {n_tokens}; use a smaller patch_size"
        raise ValueError(msg)
    n_keep = int(round((1.0 - mask_ratio) * n_tokens))
    n_keep = min(max(n_keep, 1), n_tokens - 1)
    gen_device = generator.device if generator is not None else device
    noise = torch.rand(batch_size, n_tokens, generator=generator, device=gen_device)
    ids_shuffle = torch.argsort(noise, dim=1)
    if device is not None:
        ids_shuffle = ids_shuffle.to(device)
    ids_keep = torch.sort(ids_shuffle[:, :n_keep], dim=1).values
    ids_masked = torch.sort(ids_shuffle[:, n_keep:], dim=1).values
    return ids_keep, ids_masked


def _as_bhw(x: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """Validate images and return them as ``(B, H, W)``."""
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        msg = f"images must be (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}"
        raise ValueError(msg)
    if tuple(x.shape[1:]) != tuple(image_shape):
        msg = (
            f"images are {tuple(x.shape[1:])} but the model was built for {tuple(image_shape)}; "
            "build the model with image_shape=images.shape[-2:]"
        )
        raise ValueError(msg)
    return x


# --------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------
class _SelfAttention(nn.Module):
    """The parameters of :class:`torch.nn.MultiheadAttention` (``in_proj_weight``,
    ``in_proj_bias``, ``out_proj``), initialised as it does; :class:`TransformerBlock` runs
    the attention itself."""

    def __init__(self, embed_dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = int(n_heads)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` (GELU).

    The same computation, parameter names and initialisation (random draws in the same
    order) as ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True,
    activation='gelu')``, so checkpoints of either load into the other, written out in
    functional calls: the ``nn`` layer routes through ``multi_head_attention_forward``'s
    checks, chunking and transposes, which cost ~10 % of a DARLC pretraining step on the CPU
    (issue 11) at these small widths.
    """

    def __init__(self, embed_dim: int, n_heads: int, ff_dim: int, *, dropout: float = 0.0):
        super().__init__()
        self.self_attn = _SelfAttention(embed_dim, n_heads)
        self.linear1 = nn.Linear(embed_dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout = float(dropout)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.dropout, self.training) if self.dropout > 0 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` tokens -> ``(B, L, D)``."""
        b, n, d = x.shape
        att = self.self_attn
        h = F.layer_norm(x, (d,), self.norm1.weight, self.norm1.bias, self.norm1.eps)
        qkv = F.linear(h, att.in_proj_weight, att.in_proj_bias)
        qkv = qkv.view(b, n, 3, att.n_heads, d // att.n_heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=drop)
        h = F.linear(h.transpose(1, 2).reshape(b, n, d), att.out_proj.weight, att.out_proj.bias)
        x = x + self._drop(h)
        h = F.layer_norm(x, (d,), self.norm2.weight, self.norm2.bias, self.norm2.eps)
        h = self.linear2(self._drop(F.gelu(self.linear1(h))))
        return x + self._drop(h)


class ViTEncoder(nn.Module):
    """Lightweight ViT encoder ``M_E`` / ``C_O`` (main 3.2.2, eq. 6 and 9).

    Patch embedding (a linear layer on flattened ``p x p`` patches), a learnable CLS token,
    a fixed 2-D sin-cos positional embedding on the real ``h x w`` token grid (not assumed
    square), ``depth`` pre-norm transformer blocks (GELU MLP) and a final LayerNorm.

    Parameters
    ----------
    image_shape
        ``(H, W)`` of the unpadded images; any size, padded (not cropped) to multiples of
        ``patch_size``.
    patch_size
        Side ``p`` of the square patches (paper: 4).
    embed_dim
        Token dimension ``D`` (multiple of 4 and of ``n_heads``).
    depth
        Number of transformer blocks (paper: 4).
    n_heads
        Attention heads per block (paper: 4).
    mlp_ratio
        Hidden size of the block MLP as a multiple of ``embed_dim``.
    dropout
        Dropout inside the blocks.
    smooth_sigma
        ``0`` (the paper): the patch embedding reads the image. ``> 0``: it also reads the
        image smoothed by a Gaussian of this standard deviation (pixels) inside the tissue,
        as a second channel of every patch (``DARLCConfig.input_smoothing``).
    smooth_detections
        ``> 0``: the same second channel, smoothed per image so that the kernel holds this
        many detected pixels on average (``DARLCConfig.input_detections``,
        :mod:`sngep.models.darlc.smoothing`); at most one of the two is on.
    mask
        ``(H, W)`` tissue mask for the smoothing (``None``: every pixel is tissue).

    Attributes
    ----------
    grid_shape
        ``(h, w)`` token grid.
    padded_shape
        ``(Hp, Wp) = (h * p, w * p)``.
    n_patches
        ``L = h * w``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        *,
        patch_size: int = 4,
        embed_dim: int = 128,
        depth: int = 4,
        n_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        smooth_sigma: float = 0.0,
        smooth_detections: float = 0.0,
        mask: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if len(image_shape) != 2 or min(image_shape) < 1:
            msg = f"image_shape must be (H, W) with positive sizes, got {image_shape}"
            raise ValueError(msg)
        if patch_size < 1:
            msg = f"patch_size must be >= 1, got {patch_size}"
            raise ValueError(msg)
        if embed_dim % n_heads != 0:
            msg = f"embed_dim ({embed_dim}) must be divisible by n_heads ({n_heads})"
            raise ValueError(msg)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.patch_size = int(patch_size)
        self.embed_dim = int(embed_dim)
        h = math.ceil(self.image_shape[0] / patch_size)
        w = math.ceil(self.image_shape[1] / patch_size)
        self.grid_shape = (h, w)
        self.padded_shape = (h * patch_size, w * patch_size)
        self.n_patches = h * w

        self.smoother = None
        if smooth_sigma > 0 or smooth_detections > 0:
            tissue = np.ones(self.image_shape, bool) if mask is None else np.asarray(mask, bool)
            if tissue.shape != self.image_shape:
                msg = f"mask has shape {tissue.shape}, the images {self.image_shape}"
                raise ValueError(msg)
            self.smoother = TissueSmoother(tissue, sigma=smooth_sigma, detections=smooth_detections)
        self.in_channels = 1 if self.smoother is None else 2
        self.patch_embed = nn.Linear(self.in_channels * patch_size * patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        pos = torch.from_numpy(get_2d_sincos_pos_embed(embed_dim, h, w)).float().unsqueeze(0)
        # deterministic from the shape: not stored in the state dict
        self.register_buffer("pos_embed", pos, persistent=False)
        self.blocks = nn.ModuleList(
            [
                TransformerBlock(
                    embed_dim, n_heads, int(round(embed_dim * mlp_ratio)), dropout=dropout
                )
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self._init_weights()

    def smooth(self, x: torch.Tensor) -> torch.Tensor | None:
        """The second input channel: ``x`` smoothed inside the tissue (:mod:`.smoothing`);
        ``None`` without a smoother."""
        if self.smoother is None:
            return None
        return self.smoother(_as_bhw(x, self.image_shape).to(self.patch_embed.weight.dtype))

    def _init_weights(self) -> None:
        # MAE: xavier for the patch projection (treated as a linear layer), N(0, .02) for CLS
        nn.init.xavier_uniform_(self.patch_embed.weight)
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` images -> ``(B, L, p * p)`` patches of the zero-padded images."""
        return patchify(_as_bhw(images, self.image_shape), self.patch_size)

    def tokens_in(self, images: torch.Tensor, smoothed: torch.Tensor | None = None) -> torch.Tensor:
        """What the patch embedding reads: ``(B, L, C * p * p)``, the image's patches and,
        with a smoother, those of its smoothed copy (channel 2): ``smoothed`` when given
        (:meth:`smooth` of the same images, computed once by a caller that encodes them
        many times), else computed here."""
        x = _as_bhw(images, self.image_shape)
        patches = patchify(x, self.patch_size)
        if self.smoother is None:
            return patches
        s = self.smoother(x) if smoothed is None else _as_bhw(smoothed, self.image_shape)
        return torch.cat([patches, patchify(s.to(x.dtype), self.patch_size)], dim=-1)

    def unpatchify(self, patches: torch.Tensor, *, crop: bool = True) -> torch.Tensor:
        """``(B, L, p * p)`` -> images ``(B, H, W)`` (``crop=True``) or ``(B, Hp, Wp)``."""
        x = unpatchify(patches, self.patch_size, self.grid_shape)
        if crop:
            x = x[:, : self.image_shape[0], : self.image_shape[1]]
        return x

    def forward(
        self,
        x: torch.Tensor,
        mask_ratio: float = 0.0,
        generator: torch.Generator | None = None,
        smoothed: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode images; optionally drop a random subset of tokens (MAE), or keep only the
        tokens ``keep`` of every image.

        Parameters
        ----------
        x
            ``(B, H, W)`` images.
        mask_ratio
            Fraction of tokens dropped from the encoder (0 = no masking).
        generator
            Source of the masking noise (reproducible masks); ``None`` uses torch's global RNG.
        smoothed
            :meth:`smooth` of ``x``, precomputed (``None``: computed here when needed).
        keep
            ``(n_keep,)`` indices of the tokens every image keeps (with ``mask_ratio == 0``):
            one fixed subset for the whole batch, so an image's output does not depend on
            the batch it is encoded in.

        Returns
        -------
        ``(cls, ids_masked)``: the CLS embedding ``(B, embed_dim)`` after the final LayerNorm,
        and the sorted indices ``(B, n_masked)`` of masked tokens, or ``None`` when
        ``mask_ratio == 0``.
        """
        patches = self.tokens_in(x.to(self.patch_embed.weight.dtype), smoothed)
        tokens = self.patch_embed(patches) + self.pos_embed
        ids_masked = None
        if mask_ratio > 0:
            ids_keep, ids_masked = random_masking(
                tokens.shape[0], self.n_patches, mask_ratio, generator=generator, device=x.device
            )
            idx = ids_keep.unsqueeze(-1).expand(-1, -1, self.embed_dim)
            tokens = torch.gather(tokens, 1, idx)
        elif keep is not None:
            tokens = tokens[:, keep]
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return h[:, 0], ids_masked


# --------------------------------------------------------------------------------------
# decoder and heads
# --------------------------------------------------------------------------------------
class MAEDecoder(nn.Module):
    """Residual MLP decoder ``M_D`` of main 4.1.5: D-128-256-512(+skip from D)-1024-Hp*Wp.

    ``h1 = act(W1 c)``, ``h2 = act(W2 h1)``, ``h3 = act(W3 h2 + Ws c)`` (the skip is a linear
    projection of the input ``c`` added before the activation), ``h4 = act(W4 h3)``,
    ``out = W5 h4`` (linear output: pixel values are unbounded). ``act`` is GELU (same as
    the encoder's MLP).

    Parameters
    ----------
    embed_dim
        Input dimension ``D`` (the encoder's CLS embedding).
    padded_shape
        ``(Hp, Wp)``: the decoder regenerates the padded image.
    patch_size
        Patch side ``p``; the output is returned as ``(B, L, p * p)`` patches.
    hidden_dims
        Widths of the four hidden layers; the skip joins the third.
    """

    def __init__(
        self,
        embed_dim: int,
        padded_shape: tuple[int, int],
        *,
        patch_size: int = 4,
        hidden_dims: tuple[int, int, int, int] = (128, 256, 512, 1024),
    ) -> None:
        super().__init__()
        hp, wp = padded_shape
        if hp % patch_size or wp % patch_size:
            msg = f"padded_shape {padded_shape} must be multiples of patch_size {patch_size}"
            raise ValueError(msg)
        self.padded_shape = (int(hp), int(wp))
        self.patch_size = int(patch_size)
        self.grid_shape = (hp // patch_size, wp // patch_size)
        d1, d2, d3, d4 = hidden_dims
        self.fc1 = nn.Linear(embed_dim, d1)
        self.fc2 = nn.Linear(d1, d2)
        self.fc3 = nn.Linear(d2, d3)
        self.skip = nn.Linear(embed_dim, d3)
        self.fc4 = nn.Linear(d3, d4)
        self.out = nn.Linear(d4, hp * wp)
        self.act = nn.GELU()

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` CLS embeddings -> predicted patches ``(B, L, p * p)`` of the padded image."""
        h = self.act(self.fc1(c))
        h = self.act(self.fc2(h))
        h = self.act(self.fc3(h) + self.skip(c))
        h = self.act(self.fc4(h))
        img = self.out(h).reshape(c.shape[0], *self.padded_shape)
        return patchify(img, self.patch_size)


class ContrastiveHead(nn.Module):
    """Linear map ``g`` of eq. 9: ``(B, D) -> (B, proj_dim)``."""

    def __init__(self, embed_dim: int, proj_dim: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, proj_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the linear map."""
        return self.linear(h)


class ProjectionHead(nn.Module):
    """Projection head of eq. 12: ``z = SELU(BN(W e))``, ``(B, in_dim) -> (B, out_dim)``.

    Parameters
    ----------
    in_dim
        Dimension of ``e`` (the contrastive head's ``proj_dim``).
    out_dim
        Dimension ``D`` of ``z`` (paper: 32). ``None``: no projection, ``z = BN(e)`` with
        the BatchNorm's fixed zero mean and unit variance (``DARLCConfig.head='standardise'``).
    hidden_dim
        ``None`` (default): the single layer of eq. 12. An integer gives the "two-layer MLP"
        of main 4.1.5: ``SELU(BN(W2 SELU(BN(W1 e))))``.
    n_covariates
        ``0`` (default): the head reads ``e``. ``> 0``: the head reads ``e`` minus its
        least-squares fit on ``[1, covariates]`` (``DARLCConfig.regress_out``), the
        coefficients fitted on all genes by :meth:`calibrate` and fixed in between; then
        ``forward`` and ``calibrate`` need the ``(B, n_covariates)`` covariates.

    Notes
    -----
    BatchNorm needs batches of >= 2 samples in train mode; use ``.eval()`` to embed all genes
    with running statistics.

    The last BatchNorm has no learnable scale/shift (``affine=False``). Eq. 12 leaves this
    open, but it matters: the SMM log-likelihood (eq. 18) that L1 maximises through z is not
    scale invariant; with a learnable BN scale the cheapest way to raise it is to shrink every
    z towards its component mean (density -> infinity as the scale -> 0), a collapse we saw in
    practice. Pinning each dimension of ``BN(W e)`` to zero mean and unit variance removes that
    degenerate direction, so the likelihood can only grow by better clustering.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None = 32,
        *,
        hidden_dim: int | None = None,
        n_covariates: int = 0,
    ) -> None:
        super().__init__()
        # n_covariates > 0: e minus its least-squares fit on [1, covariates] over all genes
        # (coefficients set by calibrate, fixed in between), as scanpy's regress_out does
        self.n_covariates = int(n_covariates)
        if self.n_covariates:  # no buffer otherwise: older checkpoints load unchanged
            self.register_buffer("beta", torch.zeros(self.n_covariates + 1, in_dim))
        if out_dim is None:  # no projection: z = e standardised per dimension over the genes
            self.net = nn.Sequential(nn.BatchNorm1d(in_dim, affine=False))
            return
        dims = [in_dim, out_dim] if hidden_dim is None else [in_dim, hidden_dim, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            last = i == len(dims) - 2
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b, affine=not last), nn.SELU()]
        self.net = nn.Sequential(*layers)

    def _design(self, e: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
        if covariates is None or covariates.shape != (e.shape[0], self.n_covariates):
            got = None if covariates is None else tuple(covariates.shape)
            msg = f"this head needs ({e.shape[0]}, {self.n_covariates}) covariates, got {got}"
            raise ValueError(msg)
        ones = torch.ones(e.shape[0], 1, dtype=e.dtype, device=e.device)
        return torch.cat([ones, covariates.to(e.dtype)], dim=1)

    def residualise(self, e: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """``e`` minus its calibrated linear fit on the covariates (``e`` itself without)."""
        if not self.n_covariates:
            return e
        return e - self._design(e, covariates) @ self.beta

    def forward(self, e: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """Project ``e`` (residualised on ``covariates`` if the head has any) to ``z``."""
        return self.net(self.residualise(e, covariates))

    @torch.no_grad()
    def calibrate(self, e: torch.Tensor, covariates: torch.Tensor | None = None) -> None:
        """Fit the covariate coefficients (if any) by least squares on ``e`` and set every
        BatchNorm's running statistics to those of the residuals (all genes at once).

        After this the head is meant to run in eval mode everywhere (EM, L1 on all genes,
        L2 on batches), so that the same z enters every part of the joint stage; in train
        mode BN would normalise a 32-gene batch by its own statistics and the whole gene set
        by another's.
        """
        if self.n_covariates:
            # the pseudo-inverse: least squares on any device, and a constant covariate
            # (every image equally sparse) drops out instead of making the fit singular
            design = self._design(e, covariates).double()
            self.beta.copy_(torch.linalg.pinv(design) @ e.double())
        h = self.residualise(e, covariates)
        for layer in self.net:
            if isinstance(layer, nn.BatchNorm1d):
                layer.running_mean.copy_(h.mean(dim=0))
                layer.running_var.copy_(h.var(dim=0, unbiased=False))
                layer.num_batches_tracked.zero_()
                h = nn.functional.batch_norm(
                    h,
                    layer.running_mean,
                    layer.running_var,
                    layer.weight,
                    layer.bias,
                    training=False,
                    eps=layer.eps,
                )
            else:
                h = layer(h)


# --------------------------------------------------------------------------------------
# Module I
# --------------------------------------------------------------------------------------
class ModuleI(nn.Module):
    """Module I: MAE branch + momentum contrastive branch sharing one online encoder.

    Parts (all sizes from the constructor, nothing hard-coded):

    - ``encoder``: :class:`ViTEncoder`, shared by the MAE branch (``M_E``) and the online
      contrastive encoder (``C_O``), i.e. tied parameters as in main 3.2.2;
    - ``decoder``: :class:`MAEDecoder` (``M_D``);
    - ``head``: online :class:`ContrastiveHead` ``g~``;
    - ``target_encoder``, ``target_head``: EMA copies ``C_T`` and ``g_bar`` (deep copies,
      ``requires_grad=False``), updated only by :meth:`momentum_update` (eq. 8).

    Parameters
    ----------
    image_shape
        ``(H, W)`` of the gene images.
    patch_size, embed_dim, depth, n_heads, mlp_ratio, dropout, smooth_sigma,
    smooth_detections, mask
        Passed to :class:`ViTEncoder`.
    proj_dim
        Output dimension of the contrastive heads (dimension of ``e``).
    decoder_hidden_dims
        Hidden widths of :class:`MAEDecoder`.

    Notes
    -----
    The target modules follow the parent's ``train()``/``eval()`` mode; they contain no
    BatchNorm, and dropout defaults to 0, so this does not matter by default. Their
    parameters never receive gradients, so an optimizer built on ``model.parameters()``
    leaves them alone (or use :meth:`trainable_parameters`).
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        *,
        patch_size: int = 4,
        embed_dim: int = 128,
        depth: int = 4,
        n_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        proj_dim: int = 128,
        decoder_hidden_dims: tuple[int, int, int, int] = (128, 256, 512, 1024),
        smooth_sigma: float = 0.0,
        smooth_detections: float = 0.0,
        mask: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.encoder = ViTEncoder(
            image_shape,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            n_heads=n_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            smooth_sigma=smooth_sigma,
            smooth_detections=smooth_detections,
            mask=mask,
        )
        self.decoder = MAEDecoder(
            embed_dim,
            self.encoder.padded_shape,
            patch_size=patch_size,
            hidden_dims=decoder_hidden_dims,
        )
        self.head = ContrastiveHead(embed_dim, proj_dim)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_head = copy.deepcopy(self.head)
        for p in self.target_parameters():
            p.requires_grad_(False)
        self.proj_dim = int(proj_dim)

    # ---- parameter groups ------------------------------------------------------------
    def target_parameters(self):
        """Iterate over the EMA target's parameters (encoder, then head)."""
        yield from self.target_encoder.parameters()
        yield from self.target_head.parameters()

    def trainable_parameters(self):
        """Iterate over the parameters trained by gradient (encoder, decoder, online head)."""
        return (p for p in self.parameters() if p.requires_grad)

    # ---- eq. 8 -----------------------------------------------------------------------
    @torch.no_grad()
    def momentum_update(self, m: float = 0.999) -> None:
        """EMA update of eq. 8: ``target = m * target + (1 - m) * online``.

        Applied to the encoder and the linear head; buffers are copied from the online modules.
        """
        if not 0.0 <= m <= 1.0:
            msg = f"momentum m must lie in [0, 1], got {m}"
            raise ValueError(msg)
        pairs = ((self.encoder, self.target_encoder), (self.head, self.target_head))
        for online, target in pairs:
            for p_o, p_t in zip(online.parameters(), target.parameters(), strict=True):
                p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)
            for b_o, b_t in zip(online.buffers(), target.buffers(), strict=True):
                b_t.copy_(b_o)

    # ---- eq. 6-7 ---------------------------------------------------------------------
    def mae_loss(
        self,
        x: torch.Tensor,
        mask_ratio: float = 0.8,
        generator: torch.Generator | None = None,
        pixel_weight: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        *,
        return_cls: bool = False,
        smoothed: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Masked-image-modelling loss ``L_rec`` of eq. 7.

        The encoder sees only the visible tokens; the decoder regenerates the whole padded
        image from the CLS embedding (eq. 6). For image ``i``, the squared error is summed
        over the ``p * p`` pixels of each masked patch and averaged over its ``N_masked``
        masked patches; the result is averaged over the batch:
        ``L_rec = 1/B sum_i 1/N_masked sum_{j masked} ||p_ij - p^_ij||^2``.

        Parameters
        ----------
        x
            ``(B, H, W)`` raw images.
        mask_ratio
            Fraction of masked tokens (paper: 0.8).
        generator
            Masking noise source.
        pixel_weight
            ``(H, W)`` weights of the pixels in the loss (e.g. the tissue mask), ``None``
            for eq. 7 as written (every pixel of the padded image, padding included).
        target
            ``(B, H, W)`` images to regenerate; ``None``: ``x`` itself (eq. 7).
        return_cls
            Also return the CLS embedding of the masked images (``(B, D)``, with gradient).
        smoothed
            The encoder's second channel of ``x``, precomputed (:meth:`ViTEncoder.smooth`).

        Returns
        -------
        Scalar tensor, or ``(loss, cls)`` with ``return_cls``.
        """
        cls, ids_masked = self.encoder(
            x, mask_ratio=mask_ratio, generator=generator, smoothed=smoothed
        )
        if ids_masked is None:
            msg = f"mae_loss needs mask_ratio in (0, 1), got {mask_ratio}"
            raise ValueError(msg)
        pred = self.decoder(cls)
        target = self.encoder.patchify(x if target is None else target).to(pred.dtype)
        weight = None
        if pixel_weight is not None:
            weight = self.encoder.patchify(pixel_weight[None].to(pred.dtype))[0]
        loss = masked_patch_loss(pred, target, ids_masked, weight)
        return (loss, cls) if return_cls else loss

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the unmasked CLS embedding back to ``(B, H, W)`` images (for inspection)."""
        cls, _ = self.encoder(x)
        return self.encoder.unpatchify(self.decoder(cls), crop=True)

    # ---- eq. 9 -----------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Online embedding ``e = g~(C_O(x))`` without masking, ``(B, proj_dim)`` (eq. 9).

        This is ``e_i``: the input of the contrastive loss and of the projection head (eq. 12).
        """
        cls, _ = self.encoder(x)
        return self.head(cls)

    @torch.no_grad()
    def target_embed(
        self, x_smooth: torch.Tensor, smoothed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Target embedding ``e_bar = g_bar(C_T(x_smooth))``, ``(B, proj_dim)``, no gradient
        (``smoothed``: the encoder's second channel of ``x_smooth``, precomputed)."""
        cls, _ = self.target_encoder(x_smooth, smoothed=smoothed)
        return self.target_head(cls)


def masked_patch_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    ids_masked: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 7 on given predictions.

    Batch mean of the per-image mean, over masked patches, of the squared error summed over
    the patch pixels.

    Parameters
    ----------
    pred, target
        ``(B, L, p * p)`` patches.
    ids_masked
        ``(B, n_masked)`` long indices of the masked tokens.
    weight
        ``(L, p * p)`` pixel weights (1 inside the tissue, 0 outside and in the padding).
        The weighted error is normalised by the weighted pixel count, so that all-ones
        weights give eq. 7 exactly and out-of-tissue pixels neither add error nor dilute it.
    """
    sq = (pred - target) ** 2
    if weight is None:
        err = sq.sum(dim=-1)  # (B, L)
        return torch.gather(err, 1, ids_masked).mean(dim=1).mean()
    err = (sq * weight).sum(dim=-1)  # (B, L)
    frac = weight.sum(dim=-1) / weight.shape[-1]  # (L,) share of counted pixels per patch
    num = torch.gather(err, 1, ids_masked).sum(dim=1)
    den = frac[ids_masked].sum(dim=1).clamp_min(torch.finfo(sq.dtype).tiny)
    return (num / den).mean()
