"""DARLC training (main text Algorithm 1), in explicit stages. Tensors in, history out.

:func:`fit` runs, in order:

1. :func:`pretrain` - Module I alone (Algorithm 1 lines 2-10): ``UWL(L_rec, L_clr)`` on
   mini-batches, for an optimiser-step budget (or the paper's epochs), lr warm-up + decay.
2. :func:`init_mixture` - the head's BatchNorm is calibrated on all genes, and the SMM
   starts from a converged k-means on z (many restarts), then MAP-EM.
3. :func:`joint_epoch` - one epoch of lines 11-25: warm-started EM on all z
   (:func:`refit_mixture`), the epoch loss L1 on all genes (:func:`l1_step`, eq. 16-20),
   the batch loss L2 (:func:`l2_epoch`, eq. 21-22). Training stops when fewer than ``tol``
   of the genes change cluster between epochs.
4. The labels and Theta returned are those of the trained network: one last calibration
   and warm EM on the final z (:func:`settle`), no fresh restart.

Every randomness comes from ``random_state`` (torch's global RNG is forked and restored).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sngep import _logging as logg
from sngep.models.darlc._device import adam
from sngep.models.darlc.config import DARLCConfig, resolve_patch_size
from sngep.models.darlc.losses import (
    UncertaintyWeighting,
    alignment_loss,
    contrastive_loss,
    decorrelation_loss,
    eta_schedule,
    laplacian_loss,
    laplacian_prox,
    normalized_similarity,
)
from sngep.models.darlc.smm import StudentTMixture, kl_loss, size_loss, target_distribution
from sngep.models.darlc.smoothing import TissueSmoother, detection_rate, in_chunks
from sngep.models.darlc.vit import ModuleI, ProjectionHead, random_masking


def normalise_images(images: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Standardise every image inside the tissue (mean 0, sd 1); 0 outside; constant images -> 0.

    The paper does not say how expression images are scaled for the ViT. Gene clusters are
    about *where* a gene is expressed, not how much, so each image is standardised on its
    in-tissue pixels. This also matters for learning: with [0, 1] max-scaled sparse images
    the patch tokens are dwarfed by the unit-scale sin-cos positional embedding, every image
    looks alike to the transformer, and on our synthetic benchmark k-means on the CLS
    embedding stayed at ARI ~0.4 after 300 pretraining steps, against ~0.98 with
    standardised inputs (same steps, same seed).
    """
    x = np.asarray(images, dtype=np.float32)
    if mask is None:
        mask = np.ones(x.shape[1:], dtype=bool)
    inside = x[:, mask]
    mean = inside.mean(axis=1)
    sd = inside.std(axis=1)
    out = np.zeros_like(x)
    ok = sd > 0
    out[:, mask] = np.where(
        ok[:, None], (inside - mean[:, None]) / np.where(ok, sd, 1.0)[:, None], 0.0
    )
    return out


class DARLCNet(nn.Module):
    """All trainable parts: Module I, projection head (eq. 12), SMM and the UWL weights."""

    def __init__(
        self,
        image_shape: tuple[int, int],
        config: DARLCConfig,
        n_clusters: int,
        mask: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        c = config
        # the tissue pixels (regress_out='detection' measures sparsity there); not saved:
        # the model object keeps the mask and passes it back on load
        tissue = np.ones(image_shape, dtype=bool) if mask is None else np.asarray(mask, bool)
        self.register_buffer("tissue", torch.as_tensor(tissue), persistent=False)
        self.regress_out = c.regress_out
        self.module_i = ModuleI(
            image_shape,
            patch_size=resolve_patch_size(c.patch_size, image_shape, c.max_tokens),
            embed_dim=c.embed_dim,
            depth=c.depth,
            n_heads=c.n_heads,
            mlp_ratio=c.mlp_ratio,
            proj_dim=c.contrastive_dim,
            decoder_hidden_dims=(128, 256, 512, c.decoder_hidden),
            smooth_sigma=c.input_smoothing,
            smooth_detections=c.input_detections,
            mask=tissue,
        )
        # main 4.1.5: "a two-layer MLP", each layer Linear + BN + SELU as in eq. 12.
        head_in = c.contrastive_dim if c.head_input == "e" else c.embed_dim
        out_dim = c.latent_dim if c.head == "mlp" else None  # None: z = standardised input
        n_cov = 2 if c.regress_out == "detection" else 0
        self.head = ProjectionHead(head_in, out_dim, hidden_dim=c.head_hidden, n_covariates=n_cov)
        self.head_input = c.head_input
        self.smm = (
            StudentTMixture(
                n_clusters, out_dim or head_in, mixture=c.mixture, covariance=c.covariance
            )
            if c.mixture is not None
            else None
        )
        # cls_rec > 0: the linear map from the [CLS] token to the whole view
        n_pix = int(image_shape[0] * image_shape[1])
        self.cls_decoder = nn.Linear(c.embed_dim, n_pix) if c.cls_rec > 0 else None
        self.uwl_ssl = UncertaintyWeighting(2)  # eq. 11: (L_rec, L_clr)
        self.uwl_1 = UncertaintyWeighting(3)  # eq. 16: (-L_ll, -L_size, L_rec)
        self.uwl_2 = UncertaintyWeighting(3)  # Algorithm 1 line 22: (L_kl, L_rec, L_clr)
        self.n_clusters = int(n_clusters)
        # readout_drop > 0: the fixed token subsets X_darlc averages over (one per pass)
        self.register_buffer(
            "readout_keep", _readout_subsets(self.module_i.encoder.n_patches, c), persistent=False
        )

    def readout(self, x: torch.Tensor, smoothed: torch.Tensor | None = None) -> torch.Tensor:
        """The head's input as X_darlc reads it: :meth:`features` of the whole image, or with
        ``readout_drop > 0`` the mean of the [CLS] token over the ``readout_keep`` subsets."""
        if not self.token_readout:
            return self.features(x, smoothed)
        enc = self.module_i.encoder
        if smoothed is None:
            smoothed = enc.smooth(x)
        cls = [enc(x, smoothed=smoothed, keep=keep)[0] for keep in self.readout_keep]
        return self._head_input(torch.stack(cls).mean(0))

    @property
    def token_readout(self) -> bool:
        """Whether X_darlc averages over token subsets (``readout_drop > 0``) rather than
        reading the whole image's [CLS] token, the one the joint stage trains."""
        return self.readout_keep.numel() > 0

    def _head_input(self, cls: torch.Tensor) -> torch.Tensor:
        """e of eq. 9 from a [CLS] token (``head_input='e'``), or the token itself."""
        return self.module_i.head(cls) if self.head_input == "e" else cls

    def features(self, x: torch.Tensor, smoothed: torch.Tensor | None = None) -> torch.Tensor:
        """What the projection head reads: e of eq. 9 (``head_input='e'``, the paper) or the
        encoder's [CLS] token before the contrastive map (``'cls'``); ``smoothed``: the
        encoder's second channel of ``x``, precomputed."""
        cls, _ = self.module_i.encoder(x, smoothed=smoothed)
        return self._head_input(cls)

    def covariates(self, x: torch.Tensor) -> torch.Tensor | None:
        """What the head regresses out of its input for images ``x`` (``regress_out``):
        ``(N, 2)`` detection rate ``d`` and ``d ** 2``, where ``d`` is the fraction of tissue
        pixels above the image's minimum there (a normalised image maps every zero count to
        that floor); ``None`` when nothing is regressed out."""
        if self.regress_out is None:
            return None
        parts = []
        for i in range(0, x.shape[0], 1024):  # chunks: memory bounded on whole transcriptomes
            inside = x[i : i + 1024][:, self.tissue]
            floor = inside.min(dim=1, keepdim=True).values
            tol = 1e-6 * floor.abs().clamp_min(1.0)
            parts.append((inside > floor + tol).to(x.dtype).mean(dim=1))
        d = torch.cat(parts) if parts else x.new_zeros(0)
        return torch.stack([d, d * d], dim=1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> z (eq. 12 on :meth:`features`)."""
        return self.head(self.features(x), self.covariates(x))


@dataclass
class _Data:
    """Everything a stage needs besides the network: tensors, config, randomness."""

    x: torch.Tensor  # (N, H, W) standardised images
    v: torch.Tensor  # (N, H, W) standardised positive views
    s_norm: torch.Tensor | None  # D^-1/2 S D^-1/2 (eq. 17) or None
    pixel_weight: torch.Tensor | None  # (H, W) tissue mask for L_rec, or None (eq. 7 as written)
    cfg: DARLCConfig
    gen: torch.Generator
    seed: int
    # (N, N) unit rows of S for cluster_init='seed_similarity' or 'consensus'
    similarity_rows: np.ndarray | None = None
    # (N, H W) the flattened positive views (0 outside the tissue), for the consensus graph
    view_rows: np.ndarray | None = None
    # clr_queue > 0: the latest target embeddings and the genes they embed (oldest first)
    queue: torch.Tensor | None = None
    queue_genes: torch.Tensor | None = None
    # clr_neighbours > 0: (N, N) symmetric boolean neighbour graph of the rows of S and
    # (N, k) each gene's neighbour list (-1 pads genes with fewer than k)
    neighbour_graph: torch.Tensor | None = None
    neighbour_lists: torch.Tensor | None = None
    # clr_image_exclusions > 0: (N, N) symmetric boolean graph of each gene's most correlated
    # genes by their standardised images; they leave L_clr's denominators
    exclusion_graph: torch.Tensor | None = None
    # regress_out: (N, C) covariates of every image (DARLCNet.covariates of x)
    cov: torch.Tensor | None = None
    # the encoder's second channel (input_smoothing / input_detections) of x and v, computed
    # once: every step would otherwise smooth the same images three times
    xs: torch.Tensor | None = None
    vs: torch.Tensor | None = None
    # lap_prox > 0: mixture_z(z_all) - z_all at the start of the joint epoch; L2 adds it to
    # each batch's z (the neighbours' pull, fixed within the epoch as the DEC target P is)
    prox_shift: torch.Tensor | None = None
    # lap_weight='detection': (N,) each gene's weight on its own z in the pull (lap_weights)
    lap_weight: torch.Tensor | None = None
    # rec_target='detection': (N,) each gene's detection rate, its image's share of the target
    rec_weight: torch.Tensor | None = None
    # clr_view_steps > 0: (2 s + 1, N, H, W) the positive views at the own sd times
    # sqrt(2)^j, j = -s..s (the middle one is v), and their second channels (or None)
    v_steps: torch.Tensor | None = None
    vs_steps: torch.Tensor | None = None
    # input_steps > 0: (2 s + 1, N, H, W) the encoder's second channel of x at the per-image
    # sd times sqrt(2)^j, j = -s..s (the middle one is xs)
    xs_steps: torch.Tensor | None = None

    def positives(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """L_clr's positive views of ``idx`` and their second channels: the own views, or
        with ``clr_view_steps`` each drawn at a random bandwidth step."""
        if self.v_steps is None:
            return self.v[idx], self.smoothed(idx, view=True)
        j = self._draw_steps(self.v_steps, idx)
        return self.v_steps[j, idx], (None if self.vs_steps is None else self.vs_steps[j, idx])

    def online_input(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images ``idx`` and their second channel for the online encoder: ``xs``, or
        with ``input_steps`` each drawn at a random bandwidth step."""
        if self.xs_steps is None:
            return self.x[idx], self.smoothed(idx)
        return self.x[idx], self.xs_steps[self._draw_steps(self.xs_steps, idx), idx]

    def _draw_steps(self, steps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """One uniformly drawn index into ``steps``' first axis per gene of ``idx``."""
        j = torch.randint(steps.shape[0], (len(idx),), generator=self.gen, device=self.gen.device)
        return j.to(idx.device)

    def smoothed(self, idx: slice | torch.Tensor, *, view: bool = False) -> torch.Tensor | None:
        """The precomputed second channel of ``x[idx]`` (``v[idx]`` with ``view``), or None."""
        s = self.vs if view else self.xs
        return None if s is None else s[idx]

    def contrast(self, e: torch.Tensor, e_bar: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """L_clr (eq. 10) of one batch; with ``clr_neighbours`` the batch's genes that are
        neighbours in S are positives of each other; with ``clr_queue`` the queued target
        embeddings of other genes (neither the gene itself nor its neighbours) are extra
        negatives, and this batch's ``e_bar`` joins the queue (at most ``N - batch size``
        entries, the number of genes outside a batch). With ``clr_form='align'`` it is
        :func:`~sngep.models.darlc.losses.alignment_loss` instead (no negatives)."""
        graph, role = self.neighbour_graph, self.cfg.clr_neighbour_role
        rows = None if graph is None else graph[idx]  # this batch's rows of the graph
        positives = None if rows is None else rows[:, idx]
        if self.cfg.clr_form == "align":
            return alignment_loss(e, e_bar, positives)
        held = None if self.exclusion_graph is None else self.exclusion_graph[idx]
        excluded = None if held is None else held[:, idx]
        size = min(self.cfg.clr_queue, self.n - self.bs)
        if size <= 0:
            return contrastive_loss(
                e, e_bar, tau=self.cfg.tau, positives=positives, role=role, excluded=excluded
            )
        mask = None
        if self.queue is not None:
            mask = idx[:, None] == self.queue_genes[None, :]
            for block in (rows, held):
                if block is not None:
                    mask = mask | block[:, self.queue_genes]
        loss = contrastive_loss(
            e,
            e_bar,
            tau=self.cfg.tau,
            queue=self.queue,
            queue_mask=mask,
            positives=positives,
            role=role,
            excluded=excluded,
        )
        new, genes = e_bar.detach(), idx.detach()
        if self.queue is not None:
            new, genes = torch.cat([self.queue, new]), torch.cat([self.queue_genes, genes])
        self.queue, self.queue_genes = new[-size:], genes[-size:]
        return loss

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def bs(self) -> int:
        return min(self.cfg.batch_size, self.n)

    def batches(self) -> list[torch.Tensor]:
        """A shuffled epoch of index batches; a final batch of 1 is dropped (BN, pairs).

        With a neighbour graph (``clr_neighbours``) each batch is half as many shuffled
        genes, each joined by one of its neighbours drawn at random (duplicates dropped), so
        every gene meets a positive besides its own view whatever N is."""
        perm = torch.randperm(self.n, generator=self.gen, device=self.gen.device)
        perm = perm.to(self.x.device)
        bs = self.bs
        if self.neighbour_lists is None:
            return [perm[i : i + bs] for i in range(0, self.n, bs) if min(bs, self.n - i) >= 2]
        lists = self.neighbour_lists
        pick = torch.rand(lists.shape, generator=self.gen, device=self.gen.device)
        pick = pick.to(lists.device).masked_fill(lists < 0, -1.0).argmax(dim=1)
        partner = lists.gather(1, pick[:, None])[:, 0]
        partner = torch.where(partner < 0, torch.arange(self.n, device=lists.device), partner)
        half = max(1, bs // 2)
        out = []
        for i in range(0, self.n, half):
            anchors = perm[i : i + half]
            batch = torch.unique(torch.cat([anchors, partner[anchors]]))
            if batch.numel() >= 2:
                out.append(batch)
        return out


# --------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------
def similarity_rows(similarity: Any) -> np.ndarray:
    """Each gene's row of the seeding similarity, negatives clipped to 0 and the diagonal
    zeroed, scaled to unit length: genes described by their similarities to all genes."""
    import scipy.sparse as sp

    if similarity is None:
        msg = "cluster_init='seed_similarity' needs the seeding similarity (tl.seed_similarity)"
        raise ValueError(msg)
    s = similarity.toarray() if sp.issparse(similarity) else similarity
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)  # a new array: the input is kept
    np.fill_diagonal(s, 0.0)
    norm = np.linalg.norm(s, axis=1, keepdims=True)
    return (s / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def similarity_neighbours(rows: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """``(N, k)`` each gene's ``k`` nearest genes by the cosine of its row of S
    (:func:`similarity_rows`, unit rows): genes whose similarities to all genes agree.
    Only positive cosines count; a gene with fewer has its list padded with -1."""
    n = rows.shape[0]
    k = min(k, n - 1)
    out = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, chunk):
        cos = rows[start : start + chunk] @ rows.T
        cos[np.arange(cos.shape[0]), np.arange(start, start + cos.shape[0])] = -np.inf
        top = np.argpartition(-cos, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(cos, top, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
        out[start : start + chunk] = np.where(val > 0, top, -1)
    return out


def pool_views(
    views: np.ndarray, rows: np.ndarray, k: int, mask: np.ndarray | None = None, chunk: int = 256
) -> np.ndarray:
    """Each view averaged half and half with the mean view of its ``k`` nearest genes by
    the cosine of the rows of S (:func:`similarity_neighbours`), then re-standardised in the
    tissue (:func:`normalise_images`). A gene without a neighbour keeps its own view."""
    lists = similarity_neighbours(rows, k)
    out = np.array(views, dtype=np.float32)  # a copy: the caller's views are kept
    for start in range(0, out.shape[0], chunk):
        part = lists[start : start + chunk]
        valid = part >= 0
        n_valid = valid.sum(axis=1)
        summed = np.einsum("gk,gkhw->ghw", valid.astype(np.float32), views[np.maximum(part, 0)])
        has = n_valid > 0
        mean = summed[has] / n_valid[has, None, None]
        block = out[start : start + chunk]
        block[has] = 0.5 * block[has] + 0.5 * mean
    return normalise_images(out, mask)


def neighbour_graph(lists: np.ndarray) -> np.ndarray:
    """The symmetric ``(N, N)`` boolean graph of neighbour lists (-1 entries ignored)."""
    n = lists.shape[0]
    graph = np.zeros((n, n), dtype=bool)
    rows, cols = np.nonzero(lists >= 0)
    graph[rows, lists[rows, cols]] = True
    return graph | graph.T


def _rec_loss(
    net: DARLCNet,
    idx: slice | torch.Tensor,
    data: _Data,
    gen: torch.Generator,
    x: torch.Tensor | None = None,
    *,
    return_cls: bool = False,
    smoothed: torch.Tensor | None = None,
):
    """L_rec (eq. 7) on the images ``idx`` (or their augmented version ``x``, whose second
    channel ``smoothed`` is computed by the encoder when not given): in the tissue only if
    ``rec_in_tissue``, of the positive views if ``rec_target='view'``, of the mean of view
    and image if ``'mix'``, of image and view weighted by the gene's detection rate if
    ``'detection'``, else of the unaugmented images. With ``return_cls`` also the masked
    images' CLS embedding. With ``use_rec=False`` a constant 0 and no pass."""
    if not data.cfg.use_rec:  # clr_view='masked' (return_cls) is refused by the config
        return data.x.new_zeros(())
    if data.cfg.rec_target == "view":
        target = data.v[idx]
    elif data.cfg.rec_target == "mix":
        target = 0.5 * (data.x[idx] + data.v[idx])
    elif data.cfg.rec_target == "detection":
        d = data.rec_weight[idx][:, None, None]
        target = d * data.x[idx] + (1.0 - d) * data.v[idx]
    else:
        target = data.x[idx]
    return net.module_i.mae_loss(
        data.x[idx] if x is None else x,
        data.cfg.mask_ratio,
        gen,
        pixel_weight=data.pixel_weight,
        target=target,
        return_cls=return_cls,
        smoothed=data.smoothed(idx) if x is None else smoothed,
    )


def _ssl_loss(net: DARLCNet, idx: torch.Tensor, data: _Data, *, features: bool = True):
    """L_rec (eq. 7) and L_clr (eq. 10) on one batch; returns (rec, clr, head input), the
    head input (:meth:`DARLCNet.features` of the unmasked images) only with ``features``.

    ``clr_view='full'`` is eq. 9 as written: e = g(C_O(X)) encodes the unmasked image, a
    second pass of the online encoder besides the masked one of L_rec. ``'masked'`` reuses
    the masked pass's CLS for e (one online pass a step; the masked image is the online
    view, as in masked siamese networks). With ``clr_drop > 0`` the second pass reads a
    random ``1 - clr_drop`` of the tokens (FLIP); the head input still comes from a full
    pass when ``features`` asks for it.

    With ``pixel_dropout > 0`` the online encoder sees each image with that fraction of its
    pixels set to 0 (the mean of a standardised image), drawn afresh at every step: two
    sparse samplings of one gene must land on the same embedding.
    """
    cfg = data.cfg
    xb, xs = data.online_input(idx)
    if cfg.pixel_dropout > 0:
        keep = torch.rand(xb.shape, generator=data.gen, device=data.gen.device) >= cfg.pixel_dropout
        xb, xs = xb * keep.to(xb.device), None
    masked = cfg.clr_view == "masked"
    if masked:
        rec, cls_masked = _rec_loss(net, idx, data, data.gen, x=xb, return_cls=True, smoothed=xs)
    else:
        rec, cls_masked = _rec_loss(net, idx, data, data.gen, x=xb, smoothed=xs), None
    dropped = cfg.use_clr and not masked and cfg.clr_drop > 0
    cls = None
    if features or (cfg.use_clr and not masked and not dropped):
        cls, _ = net.module_i.encoder(xb, smoothed=xs)
    if cfg.cls_rec > 0:
        if cls is None:
            cls, _ = net.module_i.encoder(xb, smoothed=xs)
        rec = rec + cfg.cls_rec * _cls_rec_loss(net, cls, data.v[idx])
    e = None
    if cfg.use_clr:
        online = cls_masked if masked else cls
        if dropped:  # the second pass on a random (1 - clr_drop) of the tokens
            online, _ = net.module_i.encoder(xb, cfg.clr_drop, data.gen, smoothed=xs)
        e = net.module_i.head(online)  # eq. 9
        e_bar = net.module_i.target_embed(*data.positives(idx))
        clr = cfg.clr_weight * data.contrast(e, e_bar, idx)
    else:
        clr = torch.zeros((), device=xb.device)
    if not features:
        return rec, clr, None
    if net.head_input == "cls":
        return rec, clr, cls
    return rec, clr, (e if e is not None and not (masked or dropped) else net.module_i.head(cls))


def _cls_rec_loss(net: DARLCNet, cls: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """``cls_rec``: mean squared error, over the tissue pixels, of the view regenerated by
    a linear map of the [CLS] token."""
    pred = net.cls_decoder(cls).view_as(views)
    weight = net.tissue.to(pred.dtype)
    return (((pred - views) ** 2) * weight).sum() / (weight.sum() * views.shape[0])


def _decorrelation(cfg: DARLCConfig, h: torch.Tensor | None) -> torch.Tensor | float:
    """``cfg.decorrelation`` x :func:`losses.decorrelation_loss` of the head inputs ``h`` (not
    in the paper), added to every loss that trains the encoder: the pretraining's eq. 11, L1
    (eq. 16, on all genes) and L2 (Algorithm 1 line 22, per batch). 0 when off."""
    if cfg.decorrelation <= 0 or h is None:
        return 0.0
    return cfg.decorrelation * decorrelation_loss(h)


def _readout_subsets(n_tokens: int, cfg: DARLCConfig) -> torch.Tensor:
    """``(readout_passes, n_keep)`` sorted token indices, each row a random subset of
    ``1 - readout_drop`` of the tokens (:func:`vit.random_masking`'s rule for n_keep), drawn
    from a fixed seed: part of the readout's definition, the same for every gene and fit.
    Empty when ``readout_drop == 0``."""
    if cfg.readout_drop <= 0:
        return torch.zeros(0, 0, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    keep, _ = random_masking(cfg.readout_passes, n_tokens, cfg.readout_drop, generator=gen)
    return keep


@torch.no_grad()
def encode_all(
    net: DARLCNet,
    x: torch.Tensor,
    batch_size: int,
    smoothed: torch.Tensor | None = None,
    *,
    readout: bool = False,
) -> torch.Tensor:
    """The head's input (:meth:`DARLCNet.features`, or with ``readout``
    :meth:`DARLCNet.readout`) for every image, without gradient (``smoothed``: the
    encoder's second channel of ``x``, precomputed)."""
    encode = net.readout if readout else net.features
    parts = []
    for i in range(0, x.shape[0], batch_size):
        s = None if smoothed is None else smoothed[i : i + batch_size]
        parts.append(encode(x[i : i + batch_size], s))
    return torch.cat(parts)


@torch.no_grad()
def embed_all(net: DARLCNet, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """X_darlc (:meth:`DARLCNet.readout` through the head) for every image with the head in
    eval mode (its calibrated BN statistics)."""
    was = net.training
    net.eval()
    out = net.head(encode_all(net, x, batch_size, readout=True), net.covariates(x))
    net.train(was)
    return out


@torch.no_grad()
def calibrated_z(
    net: DARLCNet, data: _Data, *, readout: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Calibrate the head's BN on all genes, put it in eval mode; return (head inputs, z)
    (``readout``: of :meth:`DARLCNet.readout`, X_darlc's, not of the whole image)."""
    h_all = encode_all(net, data.x, data.bs, data.xs, readout=readout)
    net.head.calibrate(h_all, data.cov)
    net.head.eval()
    return h_all, net.head(h_all, data.cov)


def mixture_z(
    z_all: torch.Tensor,
    s_norm: torch.Tensor | None,
    cfg: DARLCConfig,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the mixture clusters: ``z`` of every gene, or with ``lap_prox > 0`` the proximal
    step of L_lap (eq. 17) at it (:func:`losses.laplacian_prox`; ``weight``: each gene's
    weight on its own z, :func:`lap_weights`)."""
    if cfg.lap_prox <= 0 or s_norm is None:
        return z_all
    return laplacian_prox(z_all, s_norm, cfg.lap_prox, weight=weight)


def lap_weights(x: torch.Tensor, mask: np.ndarray | None, cfg: DARLCConfig) -> torch.Tensor | None:
    """``lap_weight='detection'``: each gene's detection rate in the tissue over the genes'
    mean, floored at 0.05 (the precision of its own z in the pull; None otherwise), read
    from ``x``, the images Module I reads (with ``encoder_input='view'`` the views, whose
    rates are all close to 1, so the weights are nearly uniform)."""
    if cfg.lap_prox <= 0 or cfg.lap_weight == "uniform":
        return None
    d = tissue_detection(x, mask)
    return (d / d.mean().clamp_min(1e-12)).clamp_min(0.05)


def tissue_detection(x: torch.Tensor, mask: np.ndarray | None) -> torch.Tensor:
    """``(N,)`` each image's detection rate over the tissue ``mask`` (every pixel if None)."""
    shape = tuple(x.shape[1:])
    tissue = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    return detection_rate(x, torch.as_tensor(tissue, device=x.device))


def _lr_lambda(cfg: DARLCConfig, total: int):
    """Pretraining lr factor per step: constant, or 5 % linear warm-up then cosine to 10 %."""
    if cfg.lr_schedule == "constant" or total <= 0:
        return lambda step: 1.0
    warm = max(1, int(0.05 * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def pretrain_steps(cfg: DARLCConfig, n: int) -> int:
    """Optimiser steps of the pretraining: ``pretrain_steps`` or ``pretrain_epochs`` epochs."""
    per_epoch = sum(
        1 for i in range(0, n, min(cfg.batch_size, n)) if min(cfg.batch_size, n - i) >= 2
    )
    if cfg.pretrain_steps is not None:
        return int(cfg.pretrain_steps)
    return int(cfg.pretrain_epochs) * per_epoch


# --------------------------------------------------------------------------------------
# stage 1: Module I pretraining (Algorithm 1 lines 2-10)
# --------------------------------------------------------------------------------------
class _TailAverage:
    """The running mean of Module I's online weights over the last ``fraction`` of ``total``
    steps (``pretrain_average``); :meth:`apply` writes it into the weights. Off at 0."""

    def __init__(self, net: DARLCNet, total: int, fraction: float) -> None:
        self.params = list(net.module_i.trainable_parameters())
        n_avg = round(fraction * total)
        self.first = total - n_avg + 1 if n_avg > 0 else None  # 1-based step
        self.mean: list[torch.Tensor] | None = None
        self.count = 0

    @torch.no_grad()
    def update(self, step: int) -> None:
        if self.first is None or step < self.first:
            return
        self.count += 1
        if self.mean is None:
            self.mean = [p.detach().clone() for p in self.params]
            return
        for m, p in zip(self.mean, self.params, strict=True):
            m.add_(p.detach() - m, alpha=1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> None:
        if self.mean is not None:
            for m, p in zip(self.mean, self.params, strict=True):
                p.copy_(m)


def pretrain(net: DARLCNet, data: _Data, opt: torch.optim.Optimizer, bar) -> list[dict]:
    """``UWL(L_rec, L_clr)`` (eq. 11) on mini-batches for :func:`pretrain_steps` steps."""
    cfg = data.cfg
    total = pretrain_steps(cfg, data.n)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total))
    average = _TailAverage(net, total, cfg.pretrain_average)
    records, step = [], 0
    while step < total:
        sums = {"rec": 0.0, "clr": 0.0, "ssl": 0.0}
        seen = 0
        for idx in data.batches():
            if step >= total:
                break
            rec, clr, feats = _ssl_loss(net, idx, data, features=cfg.decorrelation > 0)
            loss = net.uwl_ssl(rec, clr) if cfg.use_clr else rec
            loss = loss + _decorrelation(cfg, feats)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            net.module_i.momentum_update(cfg.momentum)
            step += 1
            average.update(step)
            seen += idx.numel()
            for k, val in (("rec", rec), ("clr", clr), ("ssl", loss)):
                sums[k] += float(val.detach()) * idx.numel()
        records.append({"phase": 0.0, **{f"pre_{k}": v / max(seen, 1) for k, v in sums.items()}})
        bar.set_postfix(phase="pretrain", rec=f"{records[-1]['pre_rec']:.4f}")
        bar.update(1)
    average.apply()
    for group in opt.param_groups:  # the joint stage starts from the schedule's end point
        group["initial_lr"] = group["lr"]
    return records


# --------------------------------------------------------------------------------------
# stage 2: cluster initialisation; EM refits in the joint stage
# --------------------------------------------------------------------------------------
def init_mixture(
    smm: StudentTMixture,
    z: torch.Tensor,
    cfg: DARLCConfig,
    seed: int,
    similarity_rows: np.ndarray | None = None,
    view_rows: np.ndarray | None = None,
) -> dict:
    """Start Theta from a partition, then MAP-EM on z.

    ``cluster_init``: ``'kmeans'`` (a converged k-means on z, 10 restarts), ``'leiden'``
    (Leiden on the 15-NN graph of z, its resolution bisected to K clusters; when no
    resolution gives exactly K, the closest partition split or merged to K by
    :func:`exactly_k`), ``'seed_similarity'`` (the same Leiden on
    ``similarity_rows``, each gene's row of the seeding similarity: main 3.3.2 has S inform
    the initial phase of clustering; k-means on z without it), ``'consensus'`` (the same
    Leiden on :func:`consensus_graph` of z, ``similarity_rows`` and ``view_rows``) or
    ``'kmeans++'`` (our k-means++, 3 starts, MAP-score selection: the start the issue-10
    review found to prefer degenerate fits).
    """
    zn = z.detach().cpu().double().numpy()
    k = smm.n_components
    labels = None
    if cfg.cluster_init in ("leiden", "seed_similarity", "consensus"):
        from sngep.tl._gene_leiden import leiden_labels

        rep = similarity_rows if cfg.cluster_init == "seed_similarity" else zn
        graph = None
        if cfg.cluster_init == "consensus":
            graph = consensus_graph([zn, similarity_rows, view_rows])
        if rep is not None:
            found, _ = leiden_labels(rep, n_clusters=k, random_state=seed, adjacency=graph)
            labels = exactly_k(rep, found, k, seed)
    if cfg.cluster_init != "kmeans++" and labels is None:
        from sklearn.cluster import KMeans

        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(zn)
    if labels is not None:
        hist = smm.fit_em(z, n_iter=cfg.em_iter_first, init="labels", labels=labels)
    else:
        hist = smm.fit_em(z, n_iter=cfg.em_iter_first, init="kmeans++", random_state=seed)
    return _em_record(hist, 0.0)


def _em_record(hist: dict[str, Any], restart_kept: float) -> dict[str, Any]:
    """What the joint stage logs of one EM fit: its final log-posterior, whether a fresh
    restart won (``em_restart``), its iterations and whether it met its tolerance."""
    return {
        "log_posterior": hist["log_posterior"][-1],
        "restart_kept": restart_kept,
        "n_iter": float(hist["n_iter"]),
        "converged": float(hist["converged"]),
    }


def consensus_graph(reps: list[np.ndarray | None], n_neighbors: int = 15) -> Any:
    """The sum of the ``n_neighbors``-NN graphs (scanpy's fuzzy connectivities) of each
    representation in ``reps`` (rows are genes; ``None`` entries are skipped): an edge that
    several representations draw counts once per representation. ``cluster_init`` and
    ``lap_graph`` ``'consensus'``."""
    from sngep.tl._knn import connectivities

    graphs = [connectivities(r, min(n_neighbors, r.shape[0] - 1)) for r in reps if r is not None]
    return sum(graphs[1:], graphs[0])


def exactly_k(x: np.ndarray, labels: Any, k: int, seed: int) -> np.ndarray | None:
    """``labels`` (any values) as codes ``0..k-1``: a Leiden partition whose bisected
    resolution missed ``k`` is completed by splitting its largest cluster in two (2-means on
    ``x``, 10 restarts) or merging its smallest into the one with the nearest centroid, one
    cluster at a time, so the start stays Leiden's partition. ``None`` if no cluster can be
    split."""
    from sklearn.cluster import KMeans

    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    while codes.max() + 1 < k:
        largest = np.bincount(codes).argmax()
        members = np.flatnonzero(codes == largest)
        if members.size < 2:
            return None
        half = KMeans(2, n_init=10, random_state=seed).fit_predict(x[members])
        codes[members[half == 1]] = codes.max() + 1
    while codes.max() + 1 > k:
        counts = np.bincount(codes)
        smallest = counts.argmin()
        centroids = np.stack([x[codes == c].mean(axis=0) for c in range(counts.size)])
        dist = ((centroids - centroids[smallest]) ** 2).sum(axis=1)
        dist[smallest] = np.inf
        codes[codes == smallest] = dist.argmin()
        codes = np.unique(codes, return_inverse=True)[1]
    return codes


def refit_mixture(
    smm: StudentTMixture, z: torch.Tensor, cfg: DARLCConfig, labels_prev: torch.Tensor, seed: int
) -> dict[str, Any]:
    """MAP-EM on all (detached) z, warm-started from the current Theta.

    EM from the current parameters never decreases the MAP objective, and cluster identities
    carry over from epoch to epoch. ``em_restart=True`` (our earlier guard, kept as an
    ablation) also fits a fresh k-means++ start each epoch, keeps the valid candidate with
    the higher log-posterior (a component under ``min_cluster_frac * N / K`` genes is
    invalid) and permutes the kept components to match the previous labels (Hungarian).
    Measured (issue 10): the fresh start won about half of the epochs and relabelled 30-50 %
    of the genes per epoch, so the tolerance stop never fired.
    """
    if not cfg.em_restart:
        hist = smm.fit_em(z, n_iter=cfg.em_iter, init="current")
        return _em_record(hist, 0.0)
    import copy

    from scipy.optimize import linear_sum_assignment

    n, k = z.shape[0], smm.n_components
    min_size = max(2.0, cfg.min_cluster_frac * n / k)
    warm, fresh = copy.deepcopy(smm), copy.deepcopy(smm)
    candidates = [
        (warm, warm.fit_em(z, n_iter=cfg.em_iter, init="current")),
        (fresh, fresh.fit_em(z, n_iter=cfg.em_iter, init="kmeans++", random_state=seed, n_init=1)),
    ]
    scored = []
    for i, (m, h) in enumerate(candidates):
        with torch.no_grad():
            size = float(m.soft_assign(z).sum(dim=0).min())
        valid = size >= min_size
        scored.append((valid, h["log_posterior"][-1] if valid else size, i))
    best = max(scored)[2]
    chosen, hist = candidates[best]
    params = chosen.get_parameters()
    with torch.no_grad():
        new = chosen.predict(z)
    overlap = torch.zeros(k, k, dtype=torch.float64)
    overlap.index_put_(
        (labels_prev.cpu(), new.cpu()), torch.ones(n, dtype=torch.float64), accumulate=True
    )
    _, perm = linear_sum_assignment(overlap.numpy(), maximize=True)  # new comp for old slot
    params = {key: val[perm] for key, val in params.items()}
    with torch.no_grad():
        smm.set_parameters(
            params["pi"], params["mu"], params["sigma"], None if smm.is_gaussian else params["nu"]
        )
    return _em_record(hist, float(best == 1))


# --------------------------------------------------------------------------------------
# stage 3: joint training (Algorithm 1 lines 11-25)
# --------------------------------------------------------------------------------------
def theta_param_groups(smm: StudentTMixture, lr: float) -> list[dict[str, Any]]:
    """Adam parameter groups for Theta (Algorithm 1 line 23): scale-free and scale-carrying.

    Adam moves every coordinate by about ``lr`` per step whatever its gradient's size. That is
    right for the scale-free parameters (``log nu``, the mixing logits, the log of the
    Cholesky diagonal), but ``mu`` and the off-diagonal Cholesky entries live in the units of
    z. With z's within-cluster spread ~1e-3 (seen on DLPFC after a short pretraining), steps
    of 1e-3 on the off-diagonals made Sigma numerically singular within five batches, the
    Mahalanobis distances overflowed float32 and the whole run turned to NaN. So these two
    get their own group whose learning rate is ``lr`` times the clusters' typical standard
    deviation (:func:`rescale_theta_lr`, refreshed after every EM fit): a step moves a mean or
    a shear by ~``lr`` of a cluster's own width, as it does for the scale-free parameters.
    """
    scale_free = [smm.chol_log_diag, smm.log_nu, smm.pi_logits]
    scaled = [smm.mu, smm.chol_lower]
    return [
        {"params": [p for p in scale_free if p.requires_grad], "name": "theta"},
        {
            "params": [p for p in scaled if p.requires_grad],
            "name": "theta_scaled",
            "lr": lr * _theta_scale(smm),
        },
    ]


def _theta_scale(smm: StudentTMixture) -> float:
    """Median component standard deviation (median Cholesky diagonal), capped at 1.

    The cap keeps the step no larger than the base ``lr``: wide clusters are not pushed
    harder than the other parameters, only narrow ones are protected.
    """
    with torch.no_grad():
        return min(1.0, float(smm.chol_log_diag.exp().median()))


def rescale_theta_lr(opt: torch.optim.Optimizer, smm: StudentTMixture, lr: float) -> None:
    """Set the learning rate of the scale-carrying Theta group to ``lr`` x cluster spread."""
    for group in opt.param_groups:
        if group.get("name") == "theta_scaled":
            group["lr"] = lr * _theta_scale(smm)


def l1_step(
    net: DARLCNet,
    data: _Data,
    opt: torch.optim.Optimizer,
    eta: float,
    seed: int,
    h_all: torch.Tensor,
) -> dict[str, float]:
    """Epoch-level update with L1 (eq. 16) on *all* images.

    L_lap (eq. 17) couples every pair of genes, so it needs every z at once; a mini-batch slice
    of the normalised Laplacian is not a Laplacian. Back-propagating through the ViT for all N
    images at once would not fit in memory, so the exact gradient is assembled in parts:

    1. the head (train-mode BN over all N genes: the statistics the EM's z was calibrated
       with, and a gradient through them, so L1 cannot shrink z's scale) runs on a leaf copy
       of the head inputs ``h_all`` (computed once per epoch, no graph, by the caller); L_lap
       and the mixture terms are back-propagated to the head, their UWL weights and the leaf;
    2. per chunk of images, the head inputs and L_rec (eq. 7) are recomputed with a graph, and
       the leaf gradient plus L_rec's weight in L1 are pushed through Module I;
    3. L_rec's value, now known, gives the gradient of its own UWL weight.

    The sum of the three is the gradient of eq. 16 (UWL is a sum over its terms), with one
    pass through the ViT instead of two. With ``ll_to_encoder=False`` the likelihood term sees
    a detached z: it still drives the EM (and its UWL weight), but cannot pull the encoder
    towards a collapsed embedding.
    """
    cfg, n, bs = data.cfg, data.n, data.bs
    lap_on = cfg.use_lap and data.s_norm is not None
    w_cluster = (1.0 - eta) if lap_on else 1.0
    opt.zero_grad(set_to_none=True)

    h_leaf = h_all.clone().requires_grad_(True)
    net.head.train()
    z_leaf = net.head(h_leaf, data.cov)
    net.head.eval()
    terms: dict[str, torch.Tensor] = {}
    part1 = z_leaf.sum() * 0.0
    if net.smm is not None:
        z_mix = mixture_z(z_leaf, data.s_norm, cfg, data.lap_weight)
        z_ll = z_mix if cfg.ll_to_encoder else z_mix.detach()
        terms["ll"] = torch.logsumexp(net.smm.log_joint(z_ll), dim=1).mean()  # eq. 18, per gene
        q = torch.softmax(net.smm.log_joint(z_mix), dim=1)
        terms["size"] = size_loss(q, _size_threshold(cfg, net)) if cfg.use_size else q.sum() * 0
        # eq. 16: UWL(-L_ll, -L_size, L_rec). Each -J log J <= 1/e, so -L_size + K/e >= 0: the
        # constant shift changes no gradient but keeps UWL's sigma away from its degenerate
        # minimum for non-positive losses (see losses.UncertaintyWeighting).
        size_shift = net.n_clusters / math.e
        part1 = part1 + w_cluster * (
            net.uwl_1.term(0, -terms["ll"]) + net.uwl_1.term(1, -terms["size"] + size_shift)
        )
    if lap_on:
        terms["lap"] = laplacian_loss(z_leaf, data.s_norm)
        part1 = part1 + eta * terms["lap"]
    if cfg.decorrelation > 0:
        terms["decor"] = decorrelation_loss(h_leaf)
        part1 = part1 + cfg.decorrelation * terms["decor"]
    part1.backward()
    g_h = h_leaf.grad

    # d L1 / d L_rec: the UWL weight of L_rec (eq. 11), or 1 without the mixture
    with torch.no_grad():
        w_rec = w_cluster * (0.5 * torch.exp(-net.uwl_1.log_var[2]) if net.smm is not None else 1.0)
    rec_total = 0.0
    for j, i in enumerate(range(0, n, bs)):
        xb = data.x[i : i + bs]
        gen = torch.Generator(data.gen.device).manual_seed(seed + j)
        rec = _rec_loss(net, slice(i, i + bs), data, gen)
        share = xb.shape[0] / n
        feats = net.features(xb, data.smoothed(slice(i, i + bs)))
        part = (feats * g_h[i : i + bs]).sum() + w_rec * share * rec
        part.backward()
        rec_total += float(rec.detach()) * share
    terms["rec"] = torch.tensor(rec_total)
    if net.smm is not None:
        (w_cluster * net.uwl_1.term(2, terms["rec"])).backward()  # sigma_rec's gradient

    if net.smm is not None:  # Algorithm 1 line 17 updates Module I, C and H only, not Theta
        for p in net.smm.parameters():
            p.grad = None
    opt.step()
    net.module_i.momentum_update(cfg.momentum)
    out = {f"L1_{k}": float(v.detach()) for k, v in terms.items()}
    with torch.no_grad():
        rec_part = net.uwl_1.term(2, terms["rec"]) if net.smm is not None else terms["rec"]
    out["L1"] = float(part1.detach()) + w_cluster * float(rec_part)
    return out


def _size_threshold(cfg: DARLCConfig, net: DARLCNet) -> float:
    return cfg.size_threshold if cfg.size_threshold is not None else 1.0 / net.n_clusters


def l2_epoch(
    net: DARLCNet, data: _Data, opt: torch.optim.Optimizer, p_all: torch.Tensor | None
) -> dict[str, float]:
    """Batch loss ``L2 = UWL(L_kl, L_rec, L_clr)`` (Algorithm 1 lines 18-24) over one epoch.

    ``p_all`` is the DEC target P (eq. 22), fixed within the epoch (supp. 1.3).
    """
    cfg = data.cfg
    sums = {"kl": 0.0, "rec": 0.0, "clr": 0.0, "L2": 0.0}
    for idx in data.batches():
        rec, clr, e = _ssl_loss(net, idx, data)
        if net.smm is not None:
            cov = None if data.cov is None else data.cov[idx]
            z = net.head(e, cov)
            if data.prox_shift is not None:  # lap_prox: the neighbours' pull, as of the epoch start
                z = z + data.prox_shift[idx]
            log_q = torch.log_softmax(net.smm.log_joint(z), dim=1)
            kl = kl_loss(p_all[idx], log_q)
            loss = net.uwl_2(kl, rec, clr)
        else:
            kl = torch.zeros((), device=data.x.device)
            loss = net.uwl_ssl(rec, clr) if cfg.use_clr else rec
        loss = loss + _decorrelation(cfg, e)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if net.smm is not None:
            net.smm.project_()  # keep nu inside its bounds after the gradient step
        net.module_i.momentum_update(cfg.momentum)
        for k, val in (("kl", kl), ("rec", rec), ("clr", clr), ("L2", loss)):
            sums[k] += float(val.detach()) * idx.numel() / data.n
    return {f"L2_{k}" if k != "L2" else "L2": v for k, v in sums.items()}


def pretrain_param_groups(net: DARLCNet, cfg: DARLCConfig) -> list[dict[str, Any]]:
    """Module I's optimiser groups: ``cfg.weight_decay`` (decoupled, as AdamW: Loshchilov &
    Hutter 2019) on its weight matrices only; biases, norms, the [CLS] token and the UWL
    log-variances are not decayed (the MAE / ViT convention). The paper gives no weight
    decay; 0 leaves Adam as it is."""
    decay, keep = [], []
    for name, p in net.module_i.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and not name.endswith("cls_token") else keep).append(p)
    if net.cls_decoder is not None:
        decay.append(net.cls_decoder.weight)
        keep.append(net.cls_decoder.bias)
    keep += list(net.uwl_ssl.parameters())
    return [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]


def joint_optimizer_groups(net: DARLCNet, cfg: DARLCConfig) -> list[dict[str, Any]]:
    """Parameters that join Module I's optimiser for the joint stage (head, UWL, Theta).

    The head and the two UWL weights start from scratch at this stage, so they keep the
    optimiser's base lr (``cfg.lr``); the pretrained encoder and Theta use ``joint_lr``
    (a pretrained encoder at the base lr lost its structure in the first joint epochs;
    docs/departures.md, row ``joint_lr``). ``joint_schedule`` anneals every group alike.
    """
    groups: list[dict[str, Any]] = [
        {
            "params": [
                *net.head.parameters(),
                *net.uwl_1.parameters(),
                *net.uwl_2.parameters(),
            ]
        }
    ]
    if net.smm is not None and cfg.update_theta:
        groups += theta_param_groups(net.smm, _joint_lr(cfg))
    return groups


def _joint_lr(cfg: DARLCConfig) -> float:
    return cfg.lr if cfg.joint_lr is None else cfg.joint_lr


def joint_lr_factor(cfg: DARLCConfig, epoch: int) -> float:
    """Multiplier of every joint-stage learning rate in ``epoch`` (0-based): 1 throughout for
    ``joint_schedule='constant'``, a cosine from 1 towards 0 over ``epochs`` for ``'cosine'``."""
    if cfg.joint_schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, cfg.epochs)))


_T = "_seconds_"  # joint_epoch's timings travel in its stats under this prefix


def joint_epoch(
    net: DARLCNet,
    data: _Data,
    opt: torch.optim.Optimizer,
    epoch: int,
    labels_prev: torch.Tensor | None,
) -> tuple[dict[str, float], torch.Tensor | None, bool]:
    """EM on the current z, then (unless labels have settled) one L1 step and an L2 epoch.

    Returns the epoch's statistics, the labels of the network as it was at the start of the
    epoch (after EM), and whether training should stop (fraction of genes that changed
    cluster since the previous epoch below ``tol``; the network is then left untouched, so
    those labels are the trained model's).
    """
    cfg = data.cfg
    stats: dict[str, float] = {"phase": 1.0}
    clock = time.perf_counter()
    h_all, z_all = calibrated_z(net, data)
    z_own, z_all = z_all, mixture_z(z_all, data.s_norm, cfg, data.lap_weight)
    data.prox_shift = None if z_all is z_own else z_all - z_own
    labels, q_all = None, None
    if net.smm is not None:
        if labels_prev is None:
            em = init_mixture(net.smm, z_all, cfg, data.seed, data.similarity_rows, data.view_rows)
        else:
            em = refit_mixture(net.smm, z_all, cfg, labels_prev, data.seed + epoch)
        stats["em_log_posterior"] = float(em["log_posterior"])
        stats["em_restart_kept"] = em["restart_kept"]
        stats["em_n_iter"], stats["em_converged"] = em["n_iter"], em["converged"]
        with torch.no_grad():
            q_all = net.smm.soft_assign(z_all)
        labels = q_all.argmax(dim=1)
        changed = 1.0 if labels_prev is None else float((labels != labels_prev).float().mean())
        stats["label_change"] = changed
        if labels_prev is not None and changed < cfg.tol:
            stats[_T + "em"] = time.perf_counter() - clock
            return stats, labels, True
        if cfg.update_theta:
            rescale_theta_lr(opt, net.smm, _joint_lr(cfg) * joint_lr_factor(cfg, epoch))
    eta = eta_schedule(epoch, cfg.epochs, cfg.eta0) if cfg.use_lap else 0.0
    stats["eta"] = float(eta)
    stats[_T + "em"], clock = time.perf_counter() - clock, time.perf_counter()
    stats.update(l1_step(net, data, opt, eta, data.seed + 7919 * (epoch + 1), h_all))
    stats[_T + "l1"], clock = time.perf_counter() - clock, time.perf_counter()
    p_all = None if q_all is None else target_distribution(q_all)
    stats.update(l2_epoch(net, data, opt, p_all))
    stats[_T + "l2"] = time.perf_counter() - clock
    return stats, labels, False


@torch.no_grad()
def settle(net: DARLCNet, data: _Data, *, initialised: bool) -> None:
    """Calibrate the head on the final embedding, X_darlc (:meth:`DARLCNet.readout`), and
    refit Theta there: warm EM, no restart, after joint epochs on that same embedding; the
    first fit (``cluster_init``'s start) when no joint epoch ran, or when X_darlc averages
    over token subsets (``readout_drop > 0``) and so is not the z the mixture was trained
    on. The labels are then X_darlc's."""
    readout = net.token_readout
    _, z_all = calibrated_z(net, data, readout=readout)
    z_all = mixture_z(z_all, data.s_norm, data.cfg, data.lap_weight)
    if net.smm is None:
        return
    if initialised and not readout:
        net.smm.fit_em(z_all, n_iter=data.cfg.em_iter, init="current")
    else:
        init_mixture(net.smm, z_all, data.cfg, data.seed, data.similarity_rows, data.view_rows)


# --------------------------------------------------------------------------------------
# the whole run
# --------------------------------------------------------------------------------------
def _set_smoothed(net: DARLCNet, data: _Data) -> None:
    """Smooth every image and view once for the encoder's second channel (``xs``, ``vs``);
    nothing without a smoother."""
    enc = net.module_i.encoder
    if enc.smoother is None:
        return
    data.xs, data.vs = (in_chunks(enc.smooth, t) for t in (data.x, data.v))


def _bandwidth_steps(
    x: torch.Tensor, mask: np.ndarray | None, detections: float, s: int, middle: torch.Tensor
) -> list[torch.Tensor]:
    """``x`` smoothed inside the tissue at the per-image sd times sqrt(2)^j, j = -s..s (the
    bandwidth rule at ``detections`` times 2^j); ``middle`` stands for j = 0."""
    tissue = np.ones(x.shape[1:], dtype=bool) if mask is None else np.asarray(mask, bool)
    out = []
    for j in range(-s, s + 1):
        smoother = TissueSmoother(tissue, detections=detections * 2.0**j).to(x.device)
        out.append(middle if j == 0 else in_chunks(smoother, x))
    return out


def _set_view_steps(net: DARLCNet, data: _Data, mask: np.ndarray | None) -> None:
    """``clr_view_steps``: the positive views at the per-image sd times sqrt(2)^j (the
    bandwidth rule's ``gks_detections`` times 2^j), standardised as the views are; j = 0
    is the view training was given (and its second channel ``vs``: after
    :func:`_set_smoothed`)."""
    cfg, s = data.cfg, data.cfg.clr_view_steps
    if not s or not cfg.use_clr:
        return
    steps = _bandwidth_steps(data.x, mask, cfg.gks_detections, s, data.v)
    data.v_steps = torch.stack(
        [
            v if j == s else torch.as_tensor(normalise_images(v.cpu().numpy(), mask)).to(v)
            for j, v in enumerate(steps)
        ]
    )
    enc = net.module_i.encoder
    if enc.smoother is not None:  # j = 0's channel is vs, smoothed once already
        data.vs_steps = torch.stack(
            [data.vs if j == s else in_chunks(enc.smooth, v) for j, v in enumerate(data.v_steps)]
        )


def _set_input_steps(data: _Data, mask: np.ndarray | None) -> None:
    """``input_steps``: the online encoder's second channel of every image at the
    per-image sd times sqrt(2)^j (``input_detections`` times 2^j); j = 0 is ``xs`` (after
    :func:`_set_smoothed`)."""
    cfg, s = data.cfg, data.cfg.input_steps
    if s:
        steps = _bandwidth_steps(data.x, mask, cfg.input_detections, s, data.xs)
        data.xs_steps = torch.stack(steps)


def _set_start_reps(data: _Data, similarity: Any) -> None:
    """What ``cluster_init`` and ``lap_graph`` read besides z: the rows of S
    (``'seed_similarity'``, ``'consensus'``) and the flattened positive views
    (``'consensus'``; 0 outside the tissue, so their distances are the tissue's)."""
    cfg = data.cfg
    consensus = cfg.cluster_init == "consensus" or _consensus_lap(cfg)
    if not consensus and cfg.cluster_init != "seed_similarity":
        return
    if similarity is None:
        logg.warning(
            "no seeding similarity: the 'consensus' graph (cluster_init or lap_graph) joins "
            "the graphs of z and the views only (run sngep.tl.seed_similarity to add S)"
            if consensus
            else "no seeding similarity: cluster_init='seed_similarity' starts the mixture "
            "from k-means on z instead (run sngep.tl.seed_similarity to use it)"
        )
    else:
        data.similarity_rows = similarity_rows(similarity)
    if consensus:
        data.view_rows = data.v.detach().reshape(data.n, -1).cpu().numpy()


def _consensus_lap(cfg: DARLCConfig) -> bool:
    return cfg.lap_graph != "similarity" and (cfg.use_lap or cfg.lap_prox > 0)


@torch.no_grad()
def _set_consensus_lap(net: DARLCNet, data: _Data) -> None:
    """``lap_graph='consensus'``: eq. 17's graph becomes :func:`consensus_graph` of the
    pretrained z, the rows of S and the positive views (after the pretraining);
    ``'views'``: of the pretrained z and the views."""
    if not _consensus_lap(data.cfg):
        return
    _, z_all = calibrated_z(net, data)
    rows = data.similarity_rows if data.cfg.lap_graph == "consensus" else None
    graph = consensus_graph([z_all.cpu().numpy(), rows, data.view_rows])
    data.s_norm = normalized_similarity(graph).to(data.x.device)


def _set_neighbours(data: _Data, similarity: Any, device: torch.device) -> None:
    """The neighbour lists and graph of ``clr_neighbours`` (from the rows of S)."""
    if similarity is None:
        msg = "clr_neighbours > 0 needs the seeding similarity (sngep.tl.seed_similarity)"
        raise ValueError(msg)
    rows = data.similarity_rows if data.similarity_rows is not None else similarity_rows(similarity)
    k = data.cfg.clr_neighbours
    if data.cfg.clr_neighbour_source == "consensus":
        lists = consensus_neighbours(
            similarity_neighbours(rows, 2 * k), _correlation_neighbours(data.v, 2 * k), k
        )
    else:
        lists = similarity_neighbours(rows, k)
    data.neighbour_lists = torch.as_tensor(lists, device=device)
    data.neighbour_graph = torch.as_tensor(neighbour_graph(lists), device=device)


def consensus_neighbours(first: np.ndarray, second: np.ndarray, k: int) -> np.ndarray:
    """``(N, k)``: each gene's entries of ``first`` (in its order) that ``second`` lists too,
    at most ``k``; -1 pads the rest (``first``, ``second``: neighbour lists, -1 padded)."""
    out = np.full((first.shape[0], k), -1, dtype=np.int64)
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        keep = a[(a >= 0) & np.isin(a, b[b >= 0])][:k]
        out[i, : keep.size] = keep
    return out


def _correlation_neighbours(images: torch.Tensor, k: int) -> np.ndarray:
    """Each gene's ``k`` most correlated genes by ``images`` (standardised in the tissue and
    0 outside, as ``x`` and ``v`` are, so the cosine of the rows is the Pearson correlation)."""
    flat = images.reshape(images.shape[0], -1).cpu().numpy()
    unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return similarity_neighbours(unit, k)


def _training_views(
    views: np.ndarray, similarity: Any, cfg: DARLCConfig, mask: np.ndarray | None
) -> np.ndarray:
    """The positive views training uses: ``views``, pooled over each gene's S-neighbours
    with ``view_pooling`` (:func:`pool_views`)."""
    if not cfg.view_pooling:
        return views
    if similarity is None:
        msg = "view_pooling > 0 needs the seeding similarity (sngep.tl.seed_similarity)"
        raise ValueError(msg)
    return pool_views(views, similarity_rows(similarity), cfg.view_pooling, mask)


def _set_exclusions(data: _Data) -> None:
    """The graph of ``clr_image_exclusions``: each gene's most correlated genes by its
    standardised image."""
    lists = _correlation_neighbours(data.x, data.cfg.clr_image_exclusions)
    data.exclusion_graph = torch.as_tensor(neighbour_graph(lists), device=data.x.device)


def fit(
    images: np.ndarray,
    views: np.ndarray,
    config: DARLCConfig,
    *,
    n_clusters: int,
    similarity: Any = None,
    mask: np.ndarray | None = None,
    device: torch.device,
    random_state: int = 0,
    show_progress_bar: bool = True,
) -> tuple[DARLCNet, dict[str, list[float]], dict[str, Any]]:
    """Train DARLC (Algorithm 1); return the network, the per-epoch history and a summary.

    Parameters
    ----------
    images, views
        ``(N, H, W)`` normalised raw images and their denoised positive views.
    config
        Hyper-parameters.
    n_clusters
        K.
    similarity
        ``(N, N)`` seeding similarity (dense or scipy sparse) for L_lap; ``None`` disables it.
    mask
        ``(H, W)`` tissue mask; with ``rec_in_tissue`` only its pixels enter L_rec.
    device
        Torch device.
    random_state
        Seed; all randomness comes from it (global RNG state is restored afterwards).
    show_progress_bar
        One bar over all epochs (:func:`sngep._progress.progress`).

    Returns
    -------
    The network (head calibrated, in eval mode), the history (one value per pretraining
    and joint epoch for every loss term) and a summary: ``'stop_reason'`` (``'tol'`` or
    ``'max_epochs'``), ``'n_joint_epochs'``, ``'n_pretrain_steps'``, ``'patch_size'``,
    ``'n_tokens'``, ``'em_unconverged'`` (joint epochs whose EM ran out of iterations),
    ``'seconds'`` (wall time of ``'pretrain'``, the joint stage's ``'em'``,
    ``'l1'`` and ``'l2'`` summed over epochs, and ``'final'``).
    """
    from sngep._progress import progress

    cfg = config
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(random_state)
        net = DARLCNet(tuple(images.shape[1:]), cfg, n_clusters, mask=mask).to(device)
        views = _training_views(views, similarity, cfg, mask)
        pixel_weight = None
        if cfg.rec_in_tissue and mask is not None:
            pixel_weight = torch.as_tensor(np.asarray(mask, dtype=np.float32), device=device)
        data = _Data(
            x=torch.as_tensor(images, dtype=torch.float32, device=device),
            v=torch.as_tensor(views, dtype=torch.float32, device=device),
            s_norm=(
                normalized_similarity(similarity).to(device)
                if (cfg.use_lap or cfg.lap_prox > 0) and similarity is not None
                else None
            ),
            pixel_weight=pixel_weight,
            cfg=cfg,
            gen=torch.Generator(device).manual_seed(random_state),
            seed=int(random_state),
        )
        data.cov = net.covariates(data.x)
        data.lap_weight = lap_weights(data.x, mask, cfg)
        if cfg.rec_target == "detection":
            data.rec_weight = tissue_detection(data.x, mask)
        _set_smoothed(net, data)
        _set_view_steps(net, data, mask)
        _set_input_steps(data, mask)
        _set_start_reps(data, similarity)
        if cfg.uses_neighbours:
            _set_neighbours(data, similarity, device)
        if cfg.clr_image_exclusions and cfg.use_clr:
            _set_exclusions(data)
        n_batches = len(data.batches())
        n_pre = math.ceil(pretrain_steps(cfg, data.n) / max(1, n_batches))
        bar = progress(
            total=n_pre + cfg.epochs, desc="DARLC", unit="epoch", disable=not show_progress_bar
        )
        opt = adam(pretrain_param_groups(net, cfg), lr=cfg.lr, decoupled_weight_decay=True)
        clock = time.perf_counter()
        records = pretrain(net, data, opt, bar)
        seconds = {"pretrain": time.perf_counter() - clock}
        _set_consensus_lap(net, data)
        for group in opt.param_groups:
            group["lr"] = _joint_lr(cfg)
        for group in joint_optimizer_groups(net, cfg):
            opt.add_param_group(group)
        for group in opt.param_groups:  # the theta_scaled group follows rescale_theta_lr
            group["joint_lr"] = group["lr"]
        labels_prev: torch.Tensor | None = None
        stop_reason = "max_epochs"
        epoch = 0
        for epoch in range(cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = group["joint_lr"] * joint_lr_factor(cfg, epoch)
            stats, labels_prev, stop = joint_epoch(net, data, opt, epoch, labels_prev)
            records.append(stats)
            bar.set_postfix(phase="joint", changed=f"{stats.get('label_change', math.nan):.3f}")
            bar.update(1)
            if stop:
                stop_reason = "tol"
                break
        bar.close()
        clock = time.perf_counter()
        if stop_reason != "tol" or net.token_readout:  # labels and Theta of X_darlc
            settle(net, data, initialised=labels_prev is not None)
        net.eval()
        seconds["final"] = time.perf_counter() - clock
    for part in ("em", "l1", "l2"):  # summed over the joint epochs
        seconds[part] = sum(r.pop(_T + part, 0.0) for r in records)
    keys = sorted({k for r in records for k in r})
    history = {k: [r.get(k, math.nan) for r in records] for k in keys}
    summary = {
        "stop_reason": stop_reason,
        "n_joint_epochs": sum(1 for r in records if r.get("phase") == 1.0),
        "n_pretrain_steps": pretrain_steps(cfg, data.n),
        "patch_size": net.module_i.encoder.patch_size,
        "n_tokens": net.module_i.encoder.n_patches,
        # joint-epoch EM fits that used their whole iteration budget (em_iter_first for the
        # first, em_iter after) without meeting the EM's tolerance
        "em_unconverged": sum(1 for r in records if r.get("em_converged") == 0.0),
        "seconds": seconds,
    }
    if _consensus_lap(cfg):  # eq. 17's graph, for the model's X_darlc (popped there)
        summary["_lap_graph"] = data.s_norm
    return net, history, summary
