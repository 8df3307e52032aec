"""DARLC hyper-parameters and the three presets ('paper', 'default', 'fast')."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from sngep._validate import is_int

AUGMENTS = ("gat", "gat_spots", "gks", None)
MIXTURES = ("smm", "gmm", None)
COVARIANCES = ("full", "diag", "shrunk")
CLUSTER_INITS = ("kmeans", "leiden", "kmeans++", "seed_similarity", "consensus")
LR_SCHEDULES = ("constant", "cosine")
HEADS = ("mlp", "standardise")
REGRESS_OUT = (None, "detection")


def resolve_patch_size(
    patch_size: int | None, image_shape: tuple[int, int], max_tokens: int = 128
) -> int:
    """``patch_size``, or for ``None`` the smallest patch (>= 2) whose token grid
    ``ceil(H/p) x ceil(W/p)`` has at most ``max_tokens`` tokens (4 x 4 patches on a
    DLPFC 77 x 59 image give 300 tokens; 16 x 21 mouse olfactory bulb images give 24)."""
    if patch_size is not None:
        return int(patch_size)
    h, w = (int(s) for s in image_shape)
    p = 2
    while math.ceil(h / p) * math.ceil(w / p) > max_tokens:
        p += 1
    return p


@dataclass(frozen=True)
class DARLCConfig:
    """Every knob of a DARLC run. Build one with :meth:`from_preset`.

    The 'paper' preset follows main text 4.1.5: ViT with 4 blocks x 4 heads on 4x4 patches,
    80 % masking, GAT C-512-30, 50 pretraining + 50 joint epochs, Adam with lr 1e-3,
    a projection head to D = 32. The paper does not give the ViT width, the batch size,
    the GAT epochs or the EM iterations; the values here are ours (STAGATE trains its GAT
    for 1000 epochs; MAE-style ViT-tiny widths).
    """

    # Module I (main 3.2.2)
    patch_size: int | None = 4  # None: chosen from the image size (resolve_patch_size)
    max_tokens: int = 128  # patch_size=None: the smallest patch giving at most this many tokens
    embed_dim: int = 128
    depth: int = 4
    n_heads: int = 4
    mlp_ratio: float = 4.0  # hidden width of each block's MLP, in multiples of embed_dim
    # width of the MAE decoder's last hidden layer (main 4.1.5: D-128-256-512-1024-HpWp); its
    # map to the Hp x Wp pixels is most of the decoder's cost on large images
    decoder_hidden: int = 1024
    mask_ratio: float = 0.8
    contrastive_dim: int = 128
    tau: float = 0.5
    # target embeddings of earlier batches kept as extra negatives of L_clr (a MoCo queue,
    # He et al. 2020); 0: eq. 10 as written, the batch's 2 N_b - 2 negatives only
    clr_queue: int = 0
    # each gene's clr_neighbours nearest genes in the rows of the seeding similarity S are
    # extra positives of L_clr (supervised-contrastive form, Khosla et al. 2020) and every
    # batch pairs its genes with one of them; 0: eq. 10 as written (the own view only)
    clr_neighbours: int = 0
    # 'positive': as above; 'excluded': the neighbours only leave L_clr's denominators
    clr_neighbour_role: str = "positive"
    # where those neighbours come from: 'similarity' (the rows of S, as above) or, not in the
    # paper, 'consensus': of each gene's 2 k nearest genes in the rows of S, those also among
    # its 2 k most correlated genes by positive view (at most k, in S's order)
    clr_neighbour_source: str = "similarity"
    # not in the paper: > 0, each gene's clr_image_exclusions most correlated genes by their
    # standardised images leave L_clr's denominators (not attracted, no longer pushed away:
    # false-negative cancellation, Huynh et al. 2022, from a second source than S); 0: off
    clr_image_exclusions: int = 0
    # 'infonce': L_clr is eq. 10; 'align' (not in the paper): attraction only, each gene's
    # batch-standardised e pulled to the targets of its view and S-neighbours, no negatives
    clr_form: str = "infonce"
    # L_clr enters its UWL (eq. 11 in the pretraining, Algorithm 1 line 22 in L2) multiplied
    # by clr_weight (1: as written). The UWL weights barely move in 1500 steps, so this sets
    # the rec:clr balance (docs/departures.md); the history's clr terms are the weighted ones
    clr_weight: float = 1.0
    # not in the paper: > 0, L_clr's positive view of a gene (the target encoder's input,
    # eq. 9) is drawn afresh at every step from its Gaussian-kernel views at its own sd
    # times sqrt(2)^j, j uniform in -clr_view_steps..clr_view_steps (augment='gks' with
    # gks_detections; one step of the sd grid), so the pair differs by a random smoothing
    # scale, not by nothing but the raw image's noise; L_rec's target keeps the own view.
    # Holds 2 clr_view_steps + 1 copies of the views (and of their second channels) in
    # memory; views given to DARLC.fit are refused. 0: the one view (eq. 9)
    clr_view_steps: int = 0
    # not in the paper: weight of losses.decorrelation_loss (the mean squared correlation
    # between the head input's dimensions) added to every loss that trains the encoder: the
    # pretraining's and L2's batches, L1's all genes; 0: off. On DLPFC the default's [CLS]
    # token uses ~2 of its 64 dimensions
    decorrelation: float = 0.0
    momentum: float = 0.999
    # projection head (eq. 12) and SMM (main 3.3.1)
    latent_dim: int = 32
    head_hidden: int | None = 128  # None: the single layer of eq. 12
    head_input: str = "e"  # the head reads e of eq. 9 ('e') or the encoder's [CLS] ('cls')
    # 'mlp': the trained projection head of eq. 12 / main 4.1.5 (z has latent_dim dimensions);
    # 'standardise': z = the head input with each dimension standardised over the genes
    # (BatchNorm without parameters), no projection
    head: str = "mlp"
    # 'detection': the head input minus its least-squares fit on each gene's detection rate
    # (the fraction of tissue pixels above the image's floor) and its square, over all genes,
    # before the head (scanpy's regress_out for a per-gene covariate). Standardised images
    # still show how sparse a gene is, and the [CLS] token encodes it (issue 10, point 9);
    # sparsity is not a spatial pattern. None: the head reads its input as it is (the paper)
    regress_out: str | None = None
    em_iter: int = 50
    em_iter_first: int = 200
    # SMM start, then EM: k-means (10 restarts) or Leiden on z, or Leiden on the rows of the
    # seeding similarity ('seed_similarity': S informs the initial phase, as L_lap does), or
    # Leiden on the sum of three kNN graphs: of z, of the rows of S and of the positive views
    # ('consensus': a neighbour that two of the three representations share weighs double)
    cluster_init: str = "kmeans"
    em_restart: bool = False  # also try a fresh k-means++ EM each epoch (train.refit_mixture)
    min_cluster_frac: float = 0.1  # with em_restart: a cluster < frac * N / K genes is invalid
    # SMM covariances: 'full' (supp. eq. 14-15), 'diag', or 'shrunk': full, with eq. 13's
    # S_0 replaced by the pooled within-cluster covariance (smm._pooled_prior)
    covariance: str = "full"
    ll_to_encoder: bool = True  # eq. 16: -L_ll's gradient reaches Module I and the head
    size_threshold: float | None = None  # v of eq. 20; None -> 1 / n_clusters
    eta0: float = 0.5  # eq. 16
    # not in the paper: > 0, the mixture clusters the proximal step of eq. 17's L_lap at z,
    # ((1 + lap_prox) I - lap_prox A)^-1 z with A = D^-1/2 S D^-1/2 (losses.laplacian_prox):
    # each gene's z pulled towards its neighbours in S, at once, where L_lap's one gradient
    # step per joint epoch barely moves z; X_darlc is that z. 0: the mixture clusters z
    lap_prox: float = 0.0
    # not in the paper: the graph of eq. 17 (L_lap and lap_prox). 'similarity': the seeding
    # similarity S (eq. 17); 'consensus': the sum of the 15-NN graphs of the pretrained z,
    # the rows of S and the positive views (train.consensus_graph), built once after the
    # pretraining, so that a gene whose z disagrees with its S-neighbours keeps its own;
    # 'views': the same sum without S (the pretrained z and the views)
    lap_graph: str = "similarity"
    # not in the paper: how much each gene keeps of its own z under lap_prox. 'uniform': the
    # same for every gene (the proximal step of eq. 17); 'detection': an empirical-Bayes
    # weight, the precision of a gene's own z taken proportional to its detection rate (the
    # share of tissue pixels above its floor; mean 1 over the genes, floored at 0.05), so a
    # sparse gene borrows more from its neighbours than a densely measured one
    # (losses.laplacian_prox's weight)
    lap_weight: str = "uniform"
    # optimisation (Algorithm 1)
    lr: float = 1e-3
    lr_schedule: str = "constant"  # pretraining lr: 'constant' or 'cosine' (5 % warm-up)
    joint_lr: float | None = None  # None: lr
    # the joint stage's learning rates: 'constant' (Algorithm 1) or 'cosine' (annealed to 0
    # over `epochs`, so that the labels can settle)
    joint_schedule: str = "constant"
    pretrain_steps: int | None = None  # None: pretrain_epochs epochs of mini-batches
    # not in the paper: > 0, Module I's online weights are averaged over this last fraction
    # of the pretraining steps (tail / stochastic weight averaging, Izmailov et al. 2018) and
    # the joint stage starts from the average; 0: from the last step's weights
    pretrain_average: float = 0.0
    # not in the paper: > 0, L_rec also asks a linear map of the [CLS] token of the unmasked
    # image to regenerate the whole positive view (in the tissue), with this weight: the MAE
    # decoder reads the patch tokens, so nothing else asks the [CLS] token to hold the view
    cls_rec: float = 0.0
    rec_in_tissue: bool = False  # L_rec (eq. 7) on tissue pixels only
    # L_rec regenerates the raw image (eq. 7), its positive 'view', or (not in the paper)
    # 'mix': their mean, half of the image's own detail and half of its denoised view, or
    # 'detection': per gene, image and view weighted by the gene's detection rate d in the
    # tissue (d x + (1 - d) v): a densely measured gene regenerates its own image, a sparse
    # one the view of it
    rec_target: str = "raw"
    pixel_dropout: float = 0.0  # fraction of pixels the online encoder does not see (per step)
    # e of eq. 9 (L_clr) from the unmasked image ('full', as written) or from the masked
    # pass that L_rec already runs ('masked': one online encoder pass a step)
    clr_view: str = "full"
    # not in the paper: with clr_view='full', the fraction of tokens dropped at random from
    # that second pass (FLIP, Li et al. 2023: a cheaper pass, and one more augmentation)
    clr_drop: float = 0.0
    # not in the paper: > 0, X_darlc (eq. 12's input) is the [CLS] token averaged over
    # readout_passes fixed random subsets of (1 - readout_drop) of the tokens instead of the
    # whole image's (test-time token dropout, the same subsets for every gene), and the
    # mixture is refitted there after training (from the same start as at the joint stage's
    # first epoch); 0: the [CLS] token of the whole image (eq. 9)
    readout_drop: float = 0.0
    readout_passes: int = 16
    # what Module I reads: the raw images (main 3.2.2: eq. 6 masks X_i, eq. 9 encodes X_i)
    # or their denoised views ('view': the masked view regenerates the view, the online
    # contrastive branch and z read the view; new images are denoised before embedding)
    encoder_input: str = "raw"
    # not in the paper: > 0, the encoder also reads each image smoothed by a Gaussian of
    # this sd (pixels, inside the tissue) as a second channel of its patches; the decoder's
    # targets, the views and the contrastive target are unchanged. 0: the image alone (eq. 6)
    input_smoothing: float = 0.0
    # not in the paper: > 0, the same second channel smoothed per image by a Gaussian whose
    # effective area holds this many detected pixels on average, sigma = sqrt(n / (4 pi d))
    # with d the image's detection rate (sparse images smoothed more); 0: off
    input_detections: float = 0.0
    # not in the paper: > 0, during training the online encoder's second channel (of both
    # its passes) is drawn at every step, per gene, at the per-image sd of input_detections
    # times sqrt(2)^j, j uniform in -input_steps..input_steps: an augmentation of the online
    # view, as clr_view_steps is of the target's. X_darlc and the target read j = 0
    input_steps: int = 0

    # not in the paper (it gives none): decoupled weight decay (AdamW) on Module I's weight
    # matrices; biases, norms, the [CLS] token, UWL weights and Theta are never decayed
    weight_decay: float = 0.0
    batch_size: int = 256
    pretrain_epochs: int = 50
    epochs: int = 50
    tol: float = 1e-3
    # GAT denoiser (main 3.2.1, 4.1.5)
    gat_hidden: int = 512
    gat_latent: int = 30
    # optimiser steps of the denoiser: full-batch epochs for 'gat_spots' (STAGATE: 1000),
    # batches of 16 images for 'gat' (the paper gives no number for either)
    gat_epochs: int = 1000
    gat_lr: float = 1e-3
    gat_radius: float = 1.5  # spot graph on the pixel grid: the 8-neighbourhood
    gks_sigma: float = 1.0
    # not in the paper: > 0, the 'gks' views are smoothed per image, as `input_detections`
    # smooths the encoder's second channel (a Gaussian whose effective area holds this many
    # detected pixels; sparse images smoothed more) instead of at `gks_sigma`; 0: off
    gks_detections: float = 0.0
    # not in the paper: > 0, every positive view (L_clr's target and, with rec_target='view',
    # L_rec's) is half the gene's own view and half the mean view of its `view_pooling`
    # nearest genes in the rows of S (train.pool_views): the view pools evidence over genes
    # of the same pattern as well as over neighbouring spots; 0: off
    view_pooling: int = 0
    # ablations (paper Table 4). 'gat': the GAT of main 3.2.1 on each image's pixel graph
    # (C = 1, eq. 5); 'gat_spots': STAGATE's reading, one spot graph with the genes as
    # features; 'gks': Gaussian kernel smoothing; None: no smoothing
    augment: str | None = "gat"
    mixture: str | None = "smm"
    use_clr: bool = True
    # not a row of the paper's Table 4 (its "w/o CLR" has no MIM counterpart): False drops
    # masked image modelling, L_rec (eq. 7) is 0 in eq. 11, eq. 16 and L2 and its pass is
    # not run; Module I then learns from L_clr alone
    use_rec: bool = True
    use_lap: bool = True
    use_size: bool = True
    update_theta: bool = True  # Algorithm 1 line 23: Theta also follows the gradient of L2

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides: Any) -> DARLCConfig:
        """Return the preset with ``overrides`` applied (``None`` values are ignored)."""
        if preset not in PRESETS:
            msg = f"preset must be one of {sorted(PRESETS)}, got {preset!r}"
            raise ValueError(msg)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            msg = f"unknown DARLC option(s) {sorted(unknown)}; valid: {sorted(known)}"
            raise TypeError(msg)
        # None means "take the preset's value", except for switches whose None is meaningful.
        nullable = {
            "augment",
            "mixture",
            "size_threshold",
            "patch_size",
            "pretrain_steps",
            "joint_lr",
            "head_hidden",
            "regress_out",
        }
        given = {k: v for k, v in overrides.items() if v is not None or k in nullable}
        cfg = replace(PRESETS[preset], **given)
        cfg.validate()
        return cfg

    def _check_number_types(self) -> None:
        """Integer fields take integers and float fields real numbers (not bools, not
        strings): ``epochs=0.5`` would otherwise fail deep in training, after the views."""
        for f in fields(self):
            kind = str(f.type).replace(" ", "")
            if kind not in ("int", "int|None", "float", "float|None"):
                continue
            value = getattr(self, f.name)
            if value is None and kind.endswith("|None"):
                continue
            if kind.startswith("int"):
                ok = is_int(value)
            else:
                ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            if not ok:
                want = "an integer" if kind.startswith("int") else "a number"
                msg = f"{f.name} must be {want}, got {value!r}"
                raise TypeError(msg)

    def validate(self) -> None:
        """Raise ``TypeError`` on a number of the wrong type, ``ValueError`` on inconsistent
        settings."""
        self._check_number_types()
        if self.augment not in AUGMENTS:
            msg = f"augment must be one of {AUGMENTS}, got {self.augment!r}"
            raise ValueError(msg)
        if self.mixture not in MIXTURES:
            msg = f"mixture must be one of {MIXTURES}, got {self.mixture!r}"
            raise ValueError(msg)
        for name, allowed in (
            ("covariance", COVARIANCES),
            ("cluster_init", CLUSTER_INITS),
            ("lap_graph", ("similarity", "consensus", "views")),
            ("lap_weight", ("uniform", "detection")),
            ("lr_schedule", LR_SCHEDULES),
            ("joint_schedule", LR_SCHEDULES),
            ("rec_target", ("raw", "view", "mix", "detection")),
            ("clr_view", ("full", "masked")),
            ("clr_neighbour_role", ("positive", "excluded")),
            ("clr_form", ("infonce", "align")),
            ("encoder_input", ("raw", "view")),
            ("head_input", ("e", "cls")),
            ("head", HEADS),
            ("regress_out", REGRESS_OUT),
        ):
            if getattr(self, name) not in allowed:
                msg = f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                raise ValueError(msg)
        if self.patch_size is not None and self.patch_size < 1:
            msg = f"patch_size must be None or >= 1, got {self.patch_size}"
            raise ValueError(msg)
        for name in ("input_smoothing", "input_detections", "gks_sigma", "gks_detections"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                msg = f"{name} must be finite and >= 0, got {val!r}"
                raise ValueError(msg)
        if self.input_smoothing > 0 and self.input_detections > 0:
            msg = "input_smoothing and input_detections are two ways to the same channel: give one"
            raise ValueError(msg)
        if not 0 <= self.pixel_dropout < 1:
            msg = f"pixel_dropout must be in [0, 1), got {self.pixel_dropout}"
            raise ValueError(msg)
        if self.pretrain_steps is not None and self.pretrain_steps < 0:
            msg = f"pretrain_steps must be None or >= 0, got {self.pretrain_steps}"
            raise ValueError(msg)
        if self.embed_dim % self.n_heads:
            msg = f"embed_dim ({self.embed_dim}) must be divisible by n_heads ({self.n_heads})"
            raise ValueError(msg)
        if self.max_tokens < 2:
            msg = f"max_tokens must be >= 2 (masking needs two tokens), got {self.max_tokens}"
            raise ValueError(msg)
        if not (math.isfinite(self.mlp_ratio) and self.mlp_ratio > 0):
            msg = f"mlp_ratio must be finite and > 0, got {self.mlp_ratio!r}"
            raise ValueError(msg)
        if self.decoder_hidden < 1:
            msg = f"decoder_hidden must be >= 1, got {self.decoder_hidden}"
            raise ValueError(msg)
        if not 0 <= self.pretrain_average <= 1:
            msg = f"pretrain_average must be in [0, 1], got {self.pretrain_average}"
            raise ValueError(msg)
        for name in ("mask_ratio", "clr_drop", "readout_drop"):
            if not 0 <= getattr(self, name) < 1:
                msg = f"{name} must be in [0, 1), got {getattr(self, name)}"
                raise ValueError(msg)
        if self.readout_passes < 1:
            msg = f"readout_passes must be >= 1, got {self.readout_passes}"
            raise ValueError(msg)
        if self.clr_form == "align" and (
            self.clr_queue or self.clr_neighbour_role != "positive" or self.clr_image_exclusions
        ):
            msg = (
                "clr_form='align' has no negatives: clr_queue and clr_image_exclusions must be "
                "0 and clr_neighbour_role 'positive'"
            )
            raise ValueError(msg)
        if self.clr_neighbour_source not in ("similarity", "consensus"):
            msg = (
                "clr_neighbour_source must be 'similarity' or 'consensus', got "
                f"{self.clr_neighbour_source!r}"
            )
            raise ValueError(msg)
        if self.clr_drop > 0 and self.clr_view != "full":
            msg = "clr_drop drops tokens of L_clr's second online pass: it needs clr_view='full'"
            raise ValueError(msg)
        for name in ("pretrain_epochs", "epochs"):
            if getattr(self, name) < 0:
                msg = f"{name} must be >= 0"
                raise ValueError(msg)
        for name in (
            "clr_queue",
            "clr_neighbours",
            "view_pooling",
            "clr_image_exclusions",
            "clr_view_steps",
            "input_steps",
        ):
            if getattr(self, name) < 0:
                msg = f"{name} must be >= 0, got {getattr(self, name)}"
                raise ValueError(msg)
        for name in ("clr_weight", "decorrelation", "weight_decay", "lap_prox", "cls_rec"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                msg = f"{name} must be finite and >= 0, got {val!r}"
                raise ValueError(msg)
        if self.clr_view_steps > 0 and not (
            self.augment == "gks"
            and self.gks_detections > 0
            and self.encoder_input == "raw"
            and not self.view_pooling
        ):
            msg = (
                "clr_view_steps draws L_clr's positive from Gaussian-kernel views at shifted "
                "per-image bandwidths: it needs augment='gks', gks_detections > 0, "
                "encoder_input='raw' and view_pooling=0"
            )
            raise ValueError(msg)
        if self.input_steps > 0 and not self.input_detections > 0:
            msg = "input_steps shifts the per-image bandwidth of input_detections: it needs > 0"
            raise ValueError(msg)
        if not (self.use_rec or self.use_clr):
            msg = "use_rec=False needs use_clr=True: Module I would have no loss to learn from"
            raise ValueError(msg)
        if not self.use_rec and self.clr_view == "masked":
            msg = "clr_view='masked' reads L_rec's masked pass, which use_rec=False does not run"
            raise ValueError(msg)
        if self.batch_size < 2:
            msg = "batch_size must be >= 2 (contrastive loss and batch norm need pairs)"
            raise ValueError(msg)

    @property
    def prox_reads_similarity(self) -> bool:
        """Whether the ``lap_prox`` pull runs over S (``lap_graph='similarity'``); over the
        ``'views'`` graph it needs no S, and ``'consensus'`` leaves S out with a warning."""
        return self.lap_prox > 0 and self.lap_graph == "similarity"

    @property
    def uses_neighbours(self) -> bool:
        """Whether L_clr takes neighbour positives from S (``clr_neighbours`` with L_clr on)."""
        return bool(self.clr_neighbours and self.use_clr)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (h5ad- and checkpoint-friendly: None becomes the string 'none')."""
        return {k: ("none" if v is None else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DARLCConfig:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: (None if v == "none" else v) for k, v in d.items() if k in known})


_CPU_MODEL = dict(  # a ViT-tiny for CPUs: 2 blocks of width 64 (the paper's size: 4 x 128)
    embed_dim=64,
    depth=2,
    n_heads=4,
    contrastive_dim=64,
    head_hidden=64,
    batch_size=32,
    momentum=0.99,  # 0.999 barely moves the target in the few hundred steps of a CPU run
    em_iter=30,
    em_iter_first=100,
    gat_hidden=256,
    gat_epochs=200,
)

# What the evidence supports, for a CPU. Every field that differs from 'paper' is a row of
# docs/departures.md with its measured effect (benchmarks/lab.py, 3 seeds, >= 2 data sets).
_DEFAULT = dict(
    _CPU_MODEL,
    patch_size=None,  # ~100 tokens whatever the image size (4 x 4 patches: 24 on MOB, 300 on DLPFC)
    pretrain_steps=1500,  # a step budget: 30 epochs were 150 steps on 160 genes
    lr_schedule="cosine",
    joint_lr=1e-4,  # the pretraining ends at 1e-4; jumping back to 1e-3 wrecked the encoder
    joint_schedule="cosine",  # annealed joint lr: at a constant lr 1-3 % of labels kept moving
    rec_target="view",  # L_rec regenerates the denoised view: noise cannot be predicted
    head_input="cls",  # the [CLS] token clusters better than the contrastive projection e
    head="standardise",  # z = the [CLS] token standardised: a trained projection added noise
    covariance="diag",  # full 32 x 32 covariances made one-gene clusters on real data
    cluster_init="leiden",  # the mixture starts from Leiden at K on the pretrained z
    clr_neighbours=10,  # a gene's 10 nearest genes in the rows of S are positives of L_clr
    input_detections=4.0,  # the encoder also reads each image smoothed to its sparsity
    # positives and L_rec targets: each image Gaussian-smoothed inside the tissue; the
    # spot-graph GAT mixed the programmes of sparse genes (docs/departures.md, `augment`)
    augment="gks",
    gks_detections=4.0,  # ... at the sd of the input channel's rule, not at a fixed 1 px
    epochs=20,
    tol=0.005,
)

PRESETS: dict[str, DARLCConfig] = {
    "paper": DARLCConfig(),
    "default": DARLCConfig(**_DEFAULT),
    # the default's model with a short schedule: tests, demos, a first look
    "fast": DARLCConfig(**{**_DEFAULT, "pretrain_steps": 300, "gat_epochs": 100, "epochs": 10}),
}
