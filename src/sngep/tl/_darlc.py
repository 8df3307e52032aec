"""``sngep.tl.darlc``: validate, build the config, train, write results into the AnnData."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import check_finite, check_n_genes, get_gene_images, is_int

if TYPE_CHECKING:
    from anndata import AnnData

    from sngep.models.darlc.model import DARLC


def darlc(
    adata: AnnData,
    *,
    n_clusters: int | None = None,
    images_key: str = _keys.GENE_IMAGES,
    similarity_key: str = _keys.SEED_SIMILARITY,
    preset: str = "default",
    gat_epochs: int | None = None,
    pretrain_steps: int | None = None,
    pretrain_epochs: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    random_state: int | None = 0,
    show_progress_bar: bool = True,
    return_model: bool = False,
    key_added: str = _keys.DARLC,
    copy: bool = False,
    **options: Any,
) -> AnnData | DARLC | tuple[AnnData, DARLC] | None:
    """Embed and cluster gene images with DARLC (Li et al., ACM MM 2024).

    Three stages, each with its own length: the positive views are made (the default and
    ``'fast'`` presets smooth each image with a Gaussian inside the tissue,
    ``augment='gks'``, at a bandwidth set by the image's own sparsity,
    ``gks_detections=4``; ``'paper'`` trains the GAT denoiser of main 3.2.1 for ``gat_epochs``
    optimiser steps); Module I (masked image modelling + contrastive
    learning, ViT encoder) is pretrained (``pretrain_steps`` optimiser steps, or
    ``pretrain_epochs`` epochs); then Module I, the projection head and a Student's t
    mixture are trained jointly (at most ``epochs`` epochs, Algorithm 1 of the paper),
    stopping early once fewer than the preset's ``tol`` of the genes change cluster between
    epochs.

    Parameters
    ----------
    adata
        AnnData with gene images from :func:`sngep.pp.gene_images` (or
        :func:`sngep.pp.images_from_array`).
    n_clusters
        Number of gene clusters K. Default: ``adata.uns['estimate_k']['k']`` when
        :func:`sngep.tl.estimate_k` has run, else ``round(n_genes / 30)`` (paper 4.1.5). The
        K used and where it came from are logged.
    images_key
        ``.varm`` key of the images.
    similarity_key
        ``.varp`` key of the seeding similarity (:func:`sngep.tl.seed_similarity`), used by
        the Laplacian loss (needed unless ``use_lap=False``) and its proximal step
        (``lap_prox > 0``), by the contrastive loss's neighbour positives (needed unless
        ``clr_neighbours=0``), by the pooled views (``view_pooling > 0``) and, with
        ``cluster_init='seed_similarity'`` or ``'consensus'``, to start the mixture (the
        default preset starts it from Leiden on the pretrained embedding,
        ``cluster_init='leiden'``); with ``lap_graph='consensus'`` eq. 17's graph joins its
        kNN graph to those of the pretrained embedding and of the views (``'views'``: those
        two without S).
    preset
        ``'default'`` (what our benchmarks support on a CPU; every departure from the paper
        is listed in the docs page "Where sngep departs from the paper"), ``'fast'`` (the
        default's model with a short schedule, for tests and demos) or ``'paper'`` (the
        paper's text: ViT 4 blocks x 4 heads on 4 x 4 patches, 50 + 50 epochs, GAT 1-512-30
        on each image trained 1000 steps; a GPU configuration, hours on a CPU).
    gat_epochs, pretrain_steps, pretrain_epochs, epochs, batch_size
        Override the preset's stage lengths and batch size. ``pretrain_epochs`` counts
        epochs of mini-batches and replaces the preset's step budget.
    device
        ``'auto'`` uses CUDA when available.
    random_state
        Seed; the same seed on the same device and thread count gives identical results.
    show_progress_bar
        Show progress bars (GAT epochs where a GAT makes the views, DARLC epochs).
    return_model
        Also return the trained :class:`sngep.models.DARLC` (to embed new genes, save, ...).
    key_added
        Prefix of the written keys (``'darlc'`` -> ``X_darlc``, ``darlc_soft``,
        ``darlc_denoised``).
    copy
        Work on a copy and return it.
    **options
        Any other :class:`~sngep.models.darlc.config.DARLCConfig` field, e.g. the switches
        of paper Table 4: ``use_clr`` (bool), ``augment`` (``'gat'``: the GAT of main 3.2.1
        on each gene image's pixel graph; ``'gat_spots'``: STAGATE's spot graph with every
        gene as a feature; ``'gks'``: Gaussian kernel smoothing at ``gks_sigma`` pixels,
        or per image at ``gks_detections`` > 0; ``None``),
        ``mixture`` (``'smm'``, ``'gmm'``, ``None``), ``use_lap``, ``use_size``, and
        ``use_rec`` (bool; ``False``: no masked image modelling, Module I learns from
        L_clr alone); not in the paper, ``readout_drop`` (> 0: ``X_darlc`` is the [CLS]
        token averaged over ``readout_passes`` fixed subsets of that share of the tokens
        dropped, the mixture refitted there) and ``clr_view_steps`` (> 0: L_clr's positive
        view drawn at every step at a random step of the gene's smoothing bandwidth, up to
        that many steps of sqrt(2) either way; ``docs/departures.md`` has what each did).

    Returns
    -------
    ``None``, the copy (``copy=True``), the model (``return_model=True``) or both. Writes

    ``adata.varm['X_' + key_added]``
        ``(n_vars, D)`` float32 embedding z: with the default ``head='standardise'`` the
        encoder's [CLS] token standardised over the genes (D = ``embed_dim``, 64); with
        ``head='mlp'`` (preset ``'paper'``) the projection head's output of eq. 12
        (D = ``latent_dim``, 32).
    ``adata.varm[key_added + '_soft']``
        ``(n_vars, K)`` soft assignments Q.
    ``adata.var[key_added]``
        Categorical hard cluster labels.
    ``adata.varm[key_added + '_denoised']``
        The denoised positive views (standardised per gene inside the tissue).
    ``adata.uns[key_added]``
        ``{'params', 'smm': {'pi', 'mu', 'sigma', 'nu'}, 'history', 'training',
        'n_clusters', 'n_clusters_source'}``; ``'training'`` says why training stopped
        (``'tol'``: labels settled, ``'max_epochs'``), the epochs run, the patch size and
        ``'em_unconverged'``, the joint epochs whose EM used its whole iteration budget.
    """
    from sngep.models.darlc.model import DARLC

    if not isinstance(key_added, str) or not key_added:
        msg = f"key_added must be a non-empty string, got {key_added!r}"
        raise ValueError(msg)
    if random_state is not None and not is_int(random_state):
        msg = f"random_state must be None or an integer, got {random_state!r}"
        raise TypeError(msg)
    adata = adata.copy() if copy else adata
    images, mask = get_gene_images(adata, images_key)
    n_genes = images.shape[0]
    check_n_genes(n_genes, 2)
    k, k_source = _resolve_n_clusters(adata, n_clusters, n_genes)

    stage = {
        "gat_epochs": gat_epochs,
        "pretrain_steps": pretrain_steps,
        "pretrain_epochs": pretrain_epochs,
        "epochs": epochs,
        "batch_size": batch_size,
    }
    given = {name: v for name, v in stage.items() if v is not None}
    if pretrain_epochs is not None and pretrain_steps is None:
        given["pretrain_steps"] = None  # epochs asked for: drop the preset's step budget
    model = DARLC(k, preset=preset, device=device, random_state=random_state, **given, **options)
    _warn_if_gpu_preset_on_cpu(preset, model)
    similarity = adata.varp.get(similarity_key)  # also starts the mixture (cluster_init)
    cfg = model.config
    uses = (
        ("use_lap", cfg.use_lap, "use_lap=False"),
        ("lap_prox", cfg.prox_reads_similarity, "lap_prox=0"),
        ("clr_neighbours", cfg.uses_neighbours, "clr_neighbours=0"),
        ("view_pooling", cfg.view_pooling > 0, "view_pooling=0"),
    )
    needs = [(name, off) for name, on, off in uses if on]
    if needs and similarity is None:
        names, off = " and ".join(n for n, _ in needs), ", ".join(o for _, o in needs)
        msg = (
            f"adata.varp[{similarity_key!r}] not found; run sngep.tl.seed_similarity(adata) first "
            f"({names} need it) or pass {off}"
        )
        raise KeyError(msg)
    if similarity is not None:
        values = similarity.data if sp.issparse(similarity) else np.asarray(similarity)
        check_finite(values, f"adata.varp[{similarity_key!r}]")

    empty = ~np.any(images[:, mask] != 0, axis=1)
    if empty.any():
        logg.warning(f"{int(empty.sum())} genes have all-zero images; they carry no pattern")
    start = logg.info(
        f"training DARLC (preset {preset!r}) with K={k} ({k_source}) on {n_genes} gene images "
        f"({model.device})"
    )
    model.fit(
        images,
        mask=mask,
        similarity=similarity,
        var_names=list(adata.var_names),
        show_progress_bar=show_progress_bar,
    )
    _log_stop(model)

    denoised_key = _keys.denoised(key_added)
    adata.varm[f"X_{key_added}"] = model.embedding_
    adata.varm[f"{key_added}_soft"] = model.soft_
    adata.var[key_added] = pd.Categorical(
        model.labels_.astype(str), categories=[str(c) for c in range(k)]
    )
    adata.varm[denoised_key] = model.views_.astype(np.float32)
    adata.uns[key_added] = {
        "params": {
            **model.config.to_dict(),
            "preset": preset,
            "images_key": images_key,
            "similarity_key": similarity_key if similarity is not None else "none",
            "random_state": model.random_state,
            "device": str(model.device),
        },
        "smm": model.smm_parameters(),
        "history": {k_: np.asarray(v, dtype=float) for k_, v in model.history_.items()},
        "training": dict(model.summary_),
        "n_clusters": k,
        "n_clusters_source": k_source,
    }
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    'X_{key_added}', embedding (adata.varm)\n"
            f"    '{key_added}_soft', soft assignments (adata.varm)\n"
            f"    {key_added!r}, cluster labels (adata.var)\n"
            f"    {denoised_key!r}, positive views (adata.varm)\n"
            f"    {key_added!r}, parameters, SMM, history and training summary (adata.uns)"
        ),
    )
    if return_model:
        return (adata, model) if copy else model
    return adata if copy else None


def _resolve_n_clusters(adata: AnnData, n_clusters: int | None, n_genes: int) -> tuple[int, str]:
    """K and a few words on where it came from (logged and stored)."""
    if n_clusters is not None:
        source = "given"
        if not is_int(n_clusters):
            msg = f"n_clusters must be None or an integer >= 2, got {n_clusters!r}"
            raise ValueError(msg)
    else:
        est = adata.uns.get(_keys.ESTIMATE_K)
        if isinstance(est, dict) and "k" in est:
            n_clusters = int(est["k"])
            source = "from adata.uns['estimate_k'] (sngep.tl.estimate_k)"
        else:
            n_clusters = max(2, round(n_genes / 30))
            source = "round(n_genes / 30), the paper's default; run sngep.tl.estimate_k or pass n_clusters"
    n_clusters = int(n_clusters)
    hint = "" if source == "given" else f" ({source}; pass n_clusters, or re-run it on these genes)"
    if n_clusters < 2:
        msg = f"n_clusters must be >= 2, got {n_clusters}{hint}"
        raise ValueError(msg)
    if n_clusters > n_genes:
        msg = f"n_clusters ({n_clusters}) is larger than the number of genes ({n_genes}){hint}"
        raise ValueError(msg)
    if n_genes / n_clusters < 3:
        logg.warning(
            f"K={n_clusters} ({source}) for {n_genes} genes leaves fewer than 3 genes per "
            "cluster on average; pass a smaller n_clusters"
        )
    return n_clusters, source


def _warn_if_gpu_preset_on_cpu(preset: str, model: DARLC) -> None:
    if preset == "paper" and model.device.type == "cpu":
        logg.warning(
            "preset='paper' is the paper's GPU configuration (1000 GAT epochs, a 4-block ViT "
            "on 4 x 4 patches, 50 + 50 epochs); on a CPU it takes hours for a few hundred "
            "genes. preset='default' is made for CPUs, preset='fast' for a quick look."
        )


def _log_stop(model: DARLC) -> None:
    s = model.summary_
    change = [v for v in model.history_.get("label_change", []) if v == v]
    last = f"{100 * change[-1]:.1f} %" if change else "n/a"
    if s.get("stop_reason") == "tol":
        logg.info(
            f"    joint training stopped after {s['n_joint_epochs']} epochs: labels settled "
            f"({last} of genes changed cluster, below tol={model.config.tol})"
        )
    elif s.get("n_joint_epochs", 0) > 0:
        logg.warning(
            f"joint training reached epochs={model.config.epochs} before the labels settled "
            f"({last} of genes changed cluster in the last epoch, tol={model.config.tol}); "
            "the labels are those of the final network"
        )
