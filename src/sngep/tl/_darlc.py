"""``sngep.tl.darlc``: validate, build the config, train, write results into the AnnData."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import check_n_genes, get_gene_images

if TYPE_CHECKING:
    from anndata import AnnData

    from sngep.models.darlc.model import DARLC


def darlc(
    adata: AnnData,
    *,
    n_clusters: int | None = None,
    images_key: str = _keys.GENE_IMAGES,
    similarity_key: str = _keys.SEED_SIMILARITY,
    preset: str = "paper",
    pretrain_epochs: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    random_state: int | None = 0,
    show_progress_bar: bool = True,
    return_model: bool = False,
    key_added: str = _keys.DARLC,
    copy: bool = False,
    **ablation: Any,
) -> AnnData | DARLC | tuple[AnnData, DARLC] | None:
    """Embed and cluster gene images with DARLC (Li et al., ACM MM 2024).

    Trains the GAT denoiser (positive views), then Module I (masked image modelling +
    contrastive learning, ViT encoder) and, jointly, the projection head and a Student's t
    mixture (Algorithm 1 of the paper).

    Parameters
    ----------
    adata
        AnnData with gene images from :func:`sngep.pp.gene_images` (or
        :func:`sngep.pp.images_from_array`).
    n_clusters
        Number of gene clusters K. Default: ``adata.uns['estimate_k']['k']`` when
        :func:`sngep.tl.estimate_k` has run, else ``round(n_genes / 30)`` (paper 4.1.5).
    images_key
        ``.varm`` key of the images.
    similarity_key
        ``.varp`` key of the seeding similarity (:func:`sngep.tl.seed_similarity`), used by
        the Laplacian loss; needed unless ``use_lap=False``.
    preset
        ``'paper'`` (main text 4.1.5: ViT 4 blocks x 4 heads, 50 + 50 epochs, GAT C-512-30
        trained 1000 epochs) or ``'fast'`` (CPU-friendly: ViT 2 blocks, width 64, 15 + 15
        epochs, GAT C-256-30 for 200 epochs; every loss term still on).
    pretrain_epochs, epochs, batch_size
        Override the preset.
    device
        ``'auto'`` uses CUDA when available.
    random_state
        Seed; the same seed on CPU gives identical results.
    show_progress_bar
        Show tqdm bars (GAT epochs, DARLC epochs).
    return_model
        Also return the trained :class:`sngep.models.DARLC` (to embed new genes, save, ...).
    key_added
        Prefix of the written keys (``'darlc'`` -> ``X_darlc``, ``darlc_soft``).
    copy
        Work on a copy and return it.
    **ablation
        Switches of paper Table 4 and other :class:`~sngep.models.darlc.config.DARLCConfig`
        fields: ``use_clr`` (bool), ``augment`` (``'gat'``, ``'gks'``, ``None``), ``mixture``
        (``'smm'``, ``'gmm'``, ``None``), ``use_lap``, ``use_size``, ...

    Returns
    -------
    ``None``, the copy (``copy=True``), the model (``return_model=True``) or both. Writes

    ``adata.varm['X_' + key_added]``
        ``(n_vars, 32)`` float32 embedding z (eq. 12).
    ``adata.varm[key_added + '_soft']``
        ``(n_vars, K)`` soft assignments Q.
    ``adata.var[key_added]``
        Categorical hard cluster labels.
    ``adata.varm['gene_images_denoised']``
        The denoised positive views (scaled to max 1 per gene).
    ``adata.uns[key_added]``
        ``{'params', 'smm': {'pi', 'mu', 'sigma', 'nu'}, 'history', 'n_clusters'}``.
    """
    from sngep.models.darlc.model import DARLC

    adata = adata.copy() if copy else adata
    images, mask = get_gene_images(adata, images_key)
    n_genes = images.shape[0]
    check_n_genes(n_genes, 2)
    k = _resolve_n_clusters(adata, n_clusters, n_genes)

    options = dict(ablation)
    options.update(pretrain_epochs=pretrain_epochs, epochs=epochs, batch_size=batch_size)
    model = DARLC(k, preset=preset, device=device, random_state=random_state, **options)
    similarity = None
    if model.config.use_lap:
        if similarity_key not in adata.varp:
            msg = (
                f"adata.varp[{similarity_key!r}] not found; run sngep.tl.seed_similarity(adata) first "
                "(the Laplacian loss needs it) or pass use_lap=False"
            )
            raise KeyError(msg)
        similarity = adata.varp[similarity_key]

    empty = ~np.any(images[:, mask] != 0, axis=1)
    if empty.any():
        logg.warning(f"{int(empty.sum())} genes have all-zero images; they carry no pattern")
    start = logg.info(f"training DARLC with K={k} on {n_genes} gene images ({model.device})")
    model.fit(
        images,
        mask=mask,
        similarity=similarity,
        var_names=list(adata.var_names),
        show_progress_bar=show_progress_bar,
    )

    adata.varm[f"X_{key_added}"] = model.embedding_
    adata.varm[f"{key_added}_soft"] = model.soft_
    adata.var[key_added] = pd.Categorical(
        model.labels_.astype(str), categories=[str(c) for c in range(k)]
    )
    adata.varm[_keys.GENE_IMAGES_DENOISED] = model.views_.astype(np.float32)
    adata.uns[key_added] = {
        "params": {
            **{k_: v for k_, v in model.config.to_dict().items()},
            "preset": preset,
            "images_key": images_key,
            "similarity_key": similarity_key if model.config.use_lap else "none",
            "random_state": model.random_state,
            "device": str(model.device),
        },
        "smm": model.smm_parameters(),
        "history": {k_: np.asarray(v, dtype=float) for k_, v in model.history_.items()},
        "n_clusters": k,
    }
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    'X_{key_added}', embedding (adata.varm)\n"
            f"    '{key_added}_soft', soft assignments (adata.varm)\n"
            f"    {key_added!r}, cluster labels (adata.var)\n"
            f"    {_keys.GENE_IMAGES_DENOISED!r}, positive views (adata.varm)\n"
            f"    {key_added!r}, parameters, SMM and history (adata.uns)"
        ),
    )
    if return_model:
        return (adata, model) if copy else model
    return adata if copy else None


def _resolve_n_clusters(adata: AnnData, n_clusters: int | None, n_genes: int) -> int:
    if n_clusters is None:
        est = adata.uns.get(_keys.ESTIMATE_K)
        if isinstance(est, dict) and "k" in est:
            n_clusters = int(est["k"])
        else:
            n_clusters = max(2, round(n_genes / 30))
    n_clusters = int(n_clusters)
    if n_clusters < 2:
        msg = f"n_clusters must be >= 2, got {n_clusters}"
        raise ValueError(msg)
    if n_clusters > n_genes:
        msg = f"n_clusters ({n_clusters}) is larger than the number of genes ({n_genes})"
        raise ValueError(msg)
    return n_clusters
