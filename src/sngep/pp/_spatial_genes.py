"""``sngep.pp.spatial_genes``: pre-select spatially variable genes with squidpy's Moran's I."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import check_finite, check_unique_var_names

if TYPE_CHECKING:
    from anndata import AnnData


def spatial_genes(
    adata: AnnData,
    *,
    n_top: int = 2000,
    layer: str | None = None,
    spatial_key: str = _keys.SPATIAL,
    n_neighs: int = 6,
    key_added: str = "spatially_variable",
    subset: bool = False,
    copy: bool = False,
) -> AnnData | None:
    """Rank genes by Moran's I (:func:`squidpy.gr.spatial_autocorr`) and flag the top ``n_top``.

    For users who want DARLC on a smaller gene set. Builds a spatial kNN graph with
    :func:`squidpy.gr.spatial_neighbors` (``coord_type='generic'``) only when
    ``adata.obsp['spatial_connectivities']`` does not exist yet.

    Parameters
    ----------
    adata
        Spots x genes with ``obsm[spatial_key]``; use normalised, log-transformed values
        (NaN or infinite values are an error). Gene names must be unique.
    n_top
        Number of genes to flag (all genes if fewer).
    layer
        Layer to score instead of ``.X``.
    spatial_key
        ``obsm`` key of the coordinates.
    n_neighs
        Neighbours per spot of the graph built when none exists.
    key_added
        Boolean ``adata.var`` column; Moran's I itself goes to ``adata.var['moran_i']`` (so
        ``key_added`` cannot be ``'moran_i'``).
    subset
        Keep only the flagged genes (in place, or in the copy).
    copy
        Return a copy.

    Returns
    -------
    ``None`` or the copy; writes ``adata.var[key_added]``, ``adata.var['moran_i']`` and
    ``adata.uns[key_added]['params']``. squidpy's own ``adata.uns['moranI']`` is neither
    written nor changed (a Moran's I table you computed yourself stays as it was); the graph
    built when none exists is squidpy's (``adata.obsp['spatial_connectivities']`` ...).
    """
    import squidpy as sq

    adata = adata.copy() if copy else adata
    if spatial_key not in adata.obsm:
        msg = f"adata.obsm[{spatial_key!r}] not found; spatial coordinates are needed for Moran's I"
        raise KeyError(msg)
    if not isinstance(n_top, int | np.integer) or isinstance(n_top, bool) or n_top < 1:
        msg = f"n_top must be a positive integer, got {n_top!r}"
        raise ValueError(msg)
    if key_added == "moran_i":
        msg = "key_added='moran_i' would overwrite the Moran's I column; pick another name"
        raise ValueError(msg)
    if layer is not None and layer not in adata.layers:
        msg = f"layer {layer!r} not in adata.layers (available: {list(adata.layers.keys())})"
        raise KeyError(msg)
    check_unique_var_names(adata)
    x = adata.X if layer is None else adata.layers[layer]
    what = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if x is None:
        msg = "adata.X is empty; pass layer= to score expression from a layer"
        raise ValueError(msg)
    check_finite(x.data if sp.issparse(x) else np.asarray(x), what)
    start = logg.info("ranking genes by Moran's I")
    if "spatial_connectivities" not in adata.obsp:
        if hasattr(sq.gr, "spatial_neighbors_knn"):  # squidpy >= 1.8 deprecates the old call
            sq.gr.spatial_neighbors_knn(adata, spatial_key=spatial_key, n_neighs=n_neighs)
        else:  # pragma: no cover - older squidpy
            sq.gr.spatial_neighbors(
                adata, spatial_key=spatial_key, coord_type="generic", n_neighs=n_neighs
            )
    # copy=True: squidpy returns the table instead of writing adata.uns['moranI']
    table = sq.gr.spatial_autocorr(
        adata, mode="moran", layer=layer, n_perms=None, show_progress_bar=False, copy=True
    )
    moran = table["I"].reindex(adata.var_names)
    adata.var["moran_i"] = moran.to_numpy(dtype=float)
    order = np.argsort(-np.nan_to_num(adata.var["moran_i"].to_numpy(), nan=-np.inf), kind="stable")
    flag = np.zeros(adata.n_vars, dtype=bool)
    flag[order[: min(n_top, adata.n_vars)]] = True
    adata.var[key_added] = flag
    adata.uns[key_added] = {
        "params": {
            "n_top": int(n_top),
            "layer": "X" if layer is None else layer,
            "spatial_key": spatial_key,
            "n_neighs": int(n_neighs),
        }
    }
    logg.info("    finished", time=start, deep=f"added\n    {key_added!r}, 'moran_i' (adata.var)")
    if subset:
        adata._inplace_subset_var(flag)
    return adata if copy else None
