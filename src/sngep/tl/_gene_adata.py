"""``sngep.tl.gene_adata``: genes as observations, for scanpy's graph tools."""

from __future__ import annotations

import copy as _copy
from typing import TYPE_CHECKING

import numpy as np

from sngep import _keys

if TYPE_CHECKING:
    from anndata import AnnData


def gene_adata(adata: AnnData, *, use_rep: str = _keys.X_DARLC) -> AnnData:
    """A gene-level AnnData: one observation per gene, its embedding as ``.X`` and ``.obsm``.

    So that the scanpy graph tools run on genes::

        g = sngep.tl.gene_adata(adata)
        sc.pp.neighbors(g, use_rep="X_darlc")
        sc.tl.leiden(g)
        sc.tl.umap(g); sc.pl.umap(g, color="darlc")

    Unlike ``adata.T`` it does not transpose (and densify) the expression matrix: ``.X`` is
    the ``(n_vars, D)`` embedding. Everything gene-level is carried over, copied:
    ``.var`` columns to ``.obs``, every ``.varm`` entry (embedding, soft assignments, gene
    images, denoised views) to ``.obsm``, every ``.varp`` entry (seeding similarity) to
    ``.obsp``, and the ``.uns`` entries that describe genes (gene images with their mask,
    DARLC, seeding similarity, K estimate), so that :func:`sngep.pl.gene_clusters` still works
    on the result. The input is not modified.

    Parameters
    ----------
    adata
        Spots x genes after :func:`sngep.tl.darlc` (or any ``adata.varm[use_rep]``).
    use_rep
        ``.varm`` key of the gene embedding.

    Returns
    -------
    A new AnnData with ``n_obs == adata.n_vars``: ``.X`` and ``.obsm[use_rep]`` the embedding,
    ``.obs`` the gene annotations, ``.obsm``/``.obsp`` the gene-level arrays.
    """
    import anndata as ad

    if use_rep not in adata.varm:
        msg = (
            f"adata.varm[{use_rep!r}] not found; run sngep.tl.darlc(adata) first "
            f"(available varm keys: {list(adata.varm.keys())})"
        )
        raise KeyError(msg)
    rep = np.asarray(adata.varm[use_rep], dtype=np.float32)
    if rep.ndim != 2:
        msg = f"adata.varm[{use_rep!r}] must be (n_vars, n_dims), got shape {rep.shape}"
        raise ValueError(msg)
    gene_uns = (
        _keys.GENE_IMAGES,
        _keys.SEED_SIMILARITY,
        _keys.ESTIMATE_K,
        _keys.DARLC,
    )
    uns = {k: _copy.deepcopy(adata.uns[k]) for k in gene_uns if k in adata.uns}
    g = ad.AnnData(X=rep.copy(), obs=adata.var.copy(), uns=uns)
    for key, value in adata.varm.items():
        g.obsm[key] = value.copy()
    for key, value in adata.varp.items():
        g.obsp[key] = value.copy()
    return g
