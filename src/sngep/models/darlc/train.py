"""Joint training of Module I and the SMM (main text Algorithm 1). Tensors in, history out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from sngep.models.darlc.config import DARLCConfig
from sngep.models.darlc.losses import (
    UncertaintyWeighting,
    contrastive_loss,
    eta_schedule,
    laplacian_loss,
    normalized_similarity,
)
from sngep.models.darlc.smm import StudentTMixture, kl_loss, size_loss, target_distribution
from sngep.models.darlc.vit import ModuleI, ProjectionHead


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

    def __init__(self, image_shape: tuple[int, int], config: DARLCConfig, n_clusters: int) -> None:
        super().__init__()
        c = config
        self.module_i = ModuleI(
            image_shape,
            patch_size=c.patch_size,
            embed_dim=c.embed_dim,
            depth=c.depth,
            n_heads=c.n_heads,
            proj_dim=c.contrastive_dim,
        )
        # main 4.1.5: "a two-layer MLP", each layer Linear + BN + SELU as in eq. 12.
        self.head = ProjectionHead(c.contrastive_dim, c.latent_dim, hidden_dim=c.head_hidden)
        self.smm = (
            StudentTMixture(n_clusters, c.latent_dim, mixture=c.mixture)
            if c.mixture is not None
            else None
        )
        self.uwl_ssl = UncertaintyWeighting(2)  # eq. 11: (L_rec, L_clr)
        self.uwl_1 = UncertaintyWeighting(3)  # eq. 16: (-L_ll, -L_size, L_rec)
        self.uwl_2 = UncertaintyWeighting(3)  # Algorithm 1 line 22: (L_kl, L_rec, L_clr)
        self.n_clusters = int(n_clusters)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> z (eq. 9 then eq. 12)."""
        return self.head(self.module_i.embed(x))


def _ssl_loss(
    net: DARLCNet, xb, vb, cfg: DARLCConfig, gen
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_rec (eq. 7) and L_clr (eq. 10) on one batch; returns (rec, clr, e)."""
    rec = net.module_i.mae_loss(xb, mask_ratio=cfg.mask_ratio, generator=gen)
    e = net.module_i.embed(xb)
    if cfg.use_clr:
        clr = contrastive_loss(e, net.module_i.target_embed(vb), tau=cfg.tau)
    else:
        clr = torch.zeros((), device=xb.device)
    return rec, clr, e


@torch.no_grad()
def embed_all(net: DARLCNet, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Z for every image with the head in eval mode (running BN statistics)."""
    was = net.training
    net.eval()
    out = torch.cat([net.project(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    net.train(was)
    return out


def _epoch_loss_step(
    net: DARLCNet,
    x: torch.Tensor,
    s_norm: torch.Tensor | None,
    cfg: DARLCConfig,
    eta: float,
    threshold: float,
    optimizer: torch.optim.Optimizer,
    seed: int,
) -> dict[str, float]:
    """Epoch-level update with L1 (eq. 16) on *all* images.

    L_lap (eq. 17) couples every pair of genes, so it needs every z at once; a mini-batch slice
    of the normalised Laplacian is not a Laplacian. Back-propagating through the ViT for all N
    images at once would not fit in memory, so the gradient is taken in two exact passes:
    (1) the Module I embeddings e and L_rec for all images without a graph; the cheap
    projection head then runs on all of e at once (train-mode BN over all N genes, so z is
    normalised over the whole gene set) and L1 is back-propagated to the head and to a leaf
    copy of e; (2) per chunk, e and L_rec (same masks) are recomputed with a graph and the leaf
    gradients are pushed through the ViT (the chain rule, chunk by chunk).
    """
    n, bs = x.shape[0], cfg.batch_size
    chunks = list(range(0, n, bs))
    with torch.no_grad():
        e_all = torch.cat([net.module_i.embed(x[i : i + bs]) for i in chunks])
        rec_chunks = [
            net.module_i.mae_loss(
                x[i : i + bs], cfg.mask_ratio, torch.Generator(x.device).manual_seed(seed + j)
            )
            for j, i in enumerate(chunks)
        ]
    weights = torch.tensor([min(bs, n - i) / n for i in chunks], device=x.device)
    rec_leaf = (torch.stack(rec_chunks) * weights).sum().requires_grad_(True)
    e_leaf = e_all.clone().requires_grad_(True)
    z_leaf = net.head(e_leaf)

    terms: dict[str, torch.Tensor] = {"rec": rec_leaf}
    if net.smm is not None:
        log_q = net.smm.log_joint(z_leaf)  # eq. 19 in log space, differentiable in z
        terms["ll"] = torch.logsumexp(log_q, dim=1).mean()  # eq. 18 (per-gene mean for scale)
        q = torch.softmax(log_q, dim=1)
        terms["size"] = (
            size_loss(q, threshold) if cfg.use_size else torch.zeros((), device=x.device)
        )
        # eq. 16: UWL(-L_ll, -L_size, L_rec). Each -J log J <= 1/e, so -L_size + K/e >= 0: the
        # constant shift changes no gradient but keeps UWL's sigma away from its degenerate
        # minimum for non-positive losses (see losses.UncertaintyWeighting).
        size_shift = net.n_clusters / math.e
        cluster_part = net.uwl_1(-terms["ll"], -terms["size"] + size_shift, rec_leaf)
    else:
        cluster_part = rec_leaf
    if cfg.use_lap and s_norm is not None:
        terms["lap"] = laplacian_loss(z_leaf, s_norm)
        loss = eta * terms["lap"] + (1.0 - eta) * cluster_part
    else:
        loss = cluster_part
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    g_e, g_rec = e_leaf.grad, rec_leaf.grad
    for j, i in enumerate(chunks):
        xb = x[i : i + bs]
        part = (net.module_i.embed(xb) * g_e[i : i + bs]).sum()
        if g_rec is not None:
            gen = torch.Generator(x.device).manual_seed(seed + j)
            part = part + g_rec * weights[j] * net.module_i.mae_loss(xb, cfg.mask_ratio, gen)
        part.backward()
    if net.smm is not None:  # Algorithm 1 line 17 updates Module I, C and H only, not Theta
        for p in net.smm.parameters():
            p.grad = None
    optimizer.step()
    net.module_i.momentum_update(cfg.momentum)
    out = {f"L1_{k}": float(v.detach()) for k, v in terms.items()}
    out["L1"] = float(loss.detach())
    return out


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
        {"params": scaled, "name": "theta_scaled", "lr": lr * _theta_scale(smm)},
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


def refit_smm(
    smm,
    z: torch.Tensor,
    cfg: DARLCConfig,
    *,
    labels_prev: torch.Tensor | None,
    random_state: int,
) -> dict[str, Any]:
    """MAP-EM for Theta on all (detached) z, guarded against degenerate solutions.

    In 32-D with ~30 genes per cluster (the paper's K = N/30), the MAP objective of supp.
    eqs. 11-15 rewards near-singleton components: a component centred on one gene, with the
    prior-mode covariance, has a huge density there, while a broad heavy-tailed component
    (nu -> 1) absorbs several true clusters. Warm-started EM drifts into exactly that state
    (on our synthetic benchmark the warm solution had a higher log-posterior than a fresh
    k-means++ fit while its ARI was 0.57 against 0.83). So every epoch we fit two candidates,
    the warm start from the current Theta and a fresh k-means++ start, reject candidates with a
    component holding fewer than ``min_cluster_size`` genes (``cfg.min_cluster_frac * N / K``,
    at least 2), and keep the valid one with the higher log-posterior. The kept components
    are then permuted to best match the previous labels (Hungarian) so that cluster identities,
    and the label-change criterion of Algorithm 1, stay meaningful across epochs.
    """
    import copy

    from scipy.optimize import linear_sum_assignment

    n, k = z.shape[0], smm.n_components
    min_size = max(2.0, cfg.min_cluster_frac * n / k)
    candidates = []
    if labels_prev is not None:
        warm = copy.deepcopy(smm)
        candidates.append((warm, warm.fit_em(z, n_iter=cfg.em_iter, init="current")))
    if labels_prev is None or cfg.em_restart:
        fresh = copy.deepcopy(smm)
        hist = fresh.fit_em(
            z,
            n_iter=cfg.em_iter_first if labels_prev is None else cfg.em_iter,
            init="kmeans++",
            random_state=random_state,
            n_init=3 if labels_prev is None else 1,
        )
        candidates.append((fresh, hist))

    def smallest(m) -> float:
        with torch.no_grad():
            return float(m.soft_assign(z).sum(dim=0).min())

    # valid candidates compete on the log-posterior; if none is valid, the least degenerate wins
    scored = []
    for i, (m, h) in enumerate(candidates):
        size = smallest(m)
        valid = size >= min_size
        scored.append((valid, h["log_posterior"][-1] if valid else size, i))
    best = max(scored)[2]
    chosen, hist = candidates[best]
    params = chosen.get_parameters()
    if labels_prev is not None:
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
    return {
        "log_posterior": hist["log_posterior"][-1],
        "restart_kept": float(best == len(candidates) - 1 and labels_prev is not None),
        "min_cluster_size": smallest(smm),
    }


def fit(
    images: np.ndarray,
    views: np.ndarray,
    config: DARLCConfig,
    *,
    n_clusters: int,
    similarity: Any = None,
    device: torch.device,
    random_state: int = 0,
    show_progress_bar: bool = True,
) -> tuple[DARLCNet, dict[str, list[float]]]:
    """Train DARLC (Algorithm 1) and return the network and the per-epoch history.

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
    device
        Torch device.
    random_state
        Seed; all randomness comes from it (global RNG state is restored afterwards).
    show_progress_bar
        One tqdm bar over all epochs.
    """
    from tqdm.auto import tqdm

    cfg = config
    n = images.shape[0]
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(random_state)
        net = DARLCNet(tuple(images.shape[1:]), cfg, n_clusters).to(device)
        x = torch.as_tensor(images, dtype=torch.float32, device=device)
        v = torch.as_tensor(views, dtype=torch.float32, device=device)
        s_norm = None
        if cfg.use_lap and similarity is not None:
            s_norm = normalized_similarity(similarity).to(device)
        threshold = cfg.size_threshold if cfg.size_threshold is not None else 1.0 / n_clusters
        gen = torch.Generator(device).manual_seed(random_state)
        bs = min(cfg.batch_size, n)
        records: list[dict[str, float]] = []
        log = records.append

        def batches():
            perm = torch.randperm(n, generator=gen, device=device)
            # drop a final batch of 1 (BatchNorm and the contrastive loss need pairs)
            return [perm[i : i + bs] for i in range(0, n, bs) if min(bs, n - i) >= 2]

        total = cfg.pretrain_epochs + cfg.epochs
        bar = tqdm(total=total, desc="DARLC", disable=not show_progress_bar, leave=False)
        opt = torch.optim.Adam(  # foreach: one kernel per step for the many small tensors
            [*net.module_i.trainable_parameters(), *net.uwl_ssl.parameters()],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            foreach=True,
        )
        # ---- pretraining of Module I (Algorithm 1 lines 2-10) ----
        for _ in range(cfg.pretrain_epochs):
            sums = {"rec": 0.0, "clr": 0.0, "ssl": 0.0}
            for idx in batches():
                rec, clr, _ = _ssl_loss(net, x[idx], v[idx], cfg, gen)
                loss = net.uwl_ssl(rec, clr) if cfg.use_clr else rec
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                net.module_i.momentum_update(cfg.momentum)
                for k, val in (("rec", rec), ("clr", clr), ("ssl", loss)):
                    sums[k] += float(val.detach()) * idx.numel() / n
            log({"phase": 0.0, **{f"pre_{k}": val for k, val in sums.items()}})
            bar.set_postfix(phase="pretrain", rec=f"{sums['rec']:.4f}", clr=f"{sums['clr']:.3f}")
            bar.update()

        # ---- joint optimisation (lines 11-25) ----
        params = [
            *net.module_i.trainable_parameters(),
            *net.head.parameters(),
            *net.uwl_ssl.parameters(),
            *net.uwl_1.parameters(),
            *net.uwl_2.parameters(),
        ]
        groups: list[dict[str, Any]] = [{"params": params}]
        if net.smm is not None and cfg.update_theta:
            groups += theta_param_groups(net.smm, cfg.lr)
        opt = torch.optim.Adam(  # foreach: one kernel per step for the many small tensors
            groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
        )
        labels_prev: torch.Tensor | None = None
        for epoch in range(cfg.epochs):
            stats: dict[str, float] = {"phase": 1.0}
            eta = eta_schedule(epoch, cfg.epochs, cfg.eta0) if cfg.use_lap else 0.0
            stats["eta"] = float(eta)
            if net.smm is not None:
                z_all = embed_all(net, x, bs)
                em = refit_smm(
                    net.smm, z_all, cfg, labels_prev=labels_prev, random_state=random_state + epoch
                )
                stats["em_log_posterior"] = float(em["log_posterior"])
                stats["em_restart_kept"] = em["restart_kept"]
                if cfg.update_theta:
                    rescale_theta_lr(opt, net.smm, cfg.lr)
            stats.update(
                _epoch_loss_step(
                    net, x, s_norm, cfg, eta, threshold, opt, random_state + 7919 * epoch
                )
            )

            # DEC target P (eq. 22), fixed within the epoch (supp. 1.3)
            p_all = None
            if net.smm is not None:
                with torch.no_grad():
                    p_all = target_distribution(net.smm.soft_assign(embed_all(net, x, bs)))
            sums = {"kl": 0.0, "rec": 0.0, "clr": 0.0, "L2": 0.0}
            for idx in batches():
                rec, clr, e = _ssl_loss(net, x[idx], v[idx], cfg, gen)
                if net.smm is not None:
                    z = net.head(e)
                    log_q = torch.log_softmax(net.smm.log_joint(z), dim=1)
                    kl = kl_loss(p_all[idx], log_q)
                    loss = net.uwl_2(kl, rec, clr)
                else:
                    kl = torch.zeros((), device=device)
                    loss = net.uwl_ssl(rec, clr) if cfg.use_clr else rec
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if net.smm is not None:
                    net.smm.project_()  # keep nu inside its bounds after the gradient step
                net.module_i.momentum_update(cfg.momentum)
                for k, val in (("kl", kl), ("rec", rec), ("clr", clr), ("L2", loss)):
                    sums[k] += float(val.detach()) * idx.numel() / n
            stats.update({f"L2_{k}" if k != "L2" else "L2": val for k, val in sums.items()})

            if net.smm is not None:
                with torch.no_grad():
                    labels = net.smm.soft_assign(embed_all(net, x, bs)).argmax(dim=1)
                changed = (
                    1.0 if labels_prev is None else float((labels != labels_prev).float().mean())
                )
                labels_prev = labels
                stats["label_change"] = changed
            log(stats)
            bar.set_postfix(
                phase="joint",
                L1=f"{stats['L1']:.3f}",
                L2=f"{stats['L2']:.3f}",
                changed=f"{stats.get('label_change', math.nan):.3f}",
            )
            bar.update()
            if net.smm is not None and epoch > 0 and stats["label_change"] < cfg.tol:
                break
        bar.close()

        # Final Theta matches the final embedding (one more EM from the current parameters).
        if net.smm is not None:
            refit_smm(
                net.smm,
                embed_all(net, x, bs),
                cfg,
                labels_prev=labels_prev,
                random_state=random_state,
            )
    keys = sorted({k for r in records for k in r})
    history = {k: [r.get(k, math.nan) for r in records] for k in keys}
    return net, history
