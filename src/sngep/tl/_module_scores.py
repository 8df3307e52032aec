"""``sngep.tl.module_scores``: a per-spot score for every gene cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg
from sngep._validate import check_finite, soft_columns

if TYPE_CHECKING:
    from anndata import AnnData


def module_scores(
    adata: AnnData,
    *,
    key: str = _keys.DARLC,
    layer: str | None = None,
    use_soft: bool = True,
    add_to_obs: bool = True,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Score every spot for every gene cluster: the weighted mean of its z-scored member genes.

    For cluster ``k`` with member genes ``C_k`` (``adata.var[key] == k``) the score of spot
    ``s`` is ``sum_{i in C_k} w_i x~_si / sum_{i in C_k} w_i``, with ``x~`` the expression
    z-scored per gene over spots and ``w_i`` the gene's soft assignment to ``k``
    (``adata.varm[key + '_soft']``; 1 when absent or ``use_soft=False``). Constant genes carry
    no weight. Computed without densifying a sparse matrix.

    Parameters
    ----------
    adata
        Spots x genes with gene cluster labels, e.g. after :func:`sngep.tl.darlc` or
        :func:`sngep.tl.gene_leiden`; use normalised, log-transformed expression.
    key
        ``adata.var`` column of the gene cluster labels.
    layer
        Expression layer to score instead of ``.X``.
    use_soft
        Weight members by ``adata.varm[key + '_soft']`` when it exists.
    add_to_obs
        Also write one ``adata.obs`` column per cluster (``f'{key_added}_{k}'``) so that
        ``sc.pl.spatial`` / ``sq.pl.spatial_scatter(adata, color=...)`` plot them directly.
    key_added
        ``.obsm`` key of the scores and ``.uns`` key of the parameters; default
        ``f'{key}_scores'`` (``'darlc_scores'`` for the DARLC clusters, ``'darlc_leiden_scores'``
        for :func:`sngep.tl.gene_leiden`'s), so that scoring another clustering does not
        overwrite the first.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` or the copy; writes

    ``adata.obsm[key_added]``
        ``(n_obs, K)`` DataFrame, one column per gene cluster (named after the cluster).
    ``adata.obs[f'{key_added}_{k}']``
        The same scores as columns (with ``add_to_obs=True``).
    ``adata.uns[key_added]``
        ``{'params': {...}, 'obs_columns': [...]}``.
    """
    adata = adata.copy() if copy else adata
    if key_added is None:
        key_added = f"{key}_scores"
    if key not in adata.var:
        msg = (
            f"adata.var[{key!r}] not found; run sngep.tl.darlc(adata) or sngep.tl.gene_leiden first"
        )
        raise KeyError(msg)
    if layer is not None and layer not in adata.layers:
        msg = f"adata.layers[{layer!r}] not found (available: {list(adata.layers.keys())})"
        raise KeyError(msg)
    labels = adata.var[key].astype("category")
    if labels.isna().any():
        msg = f"adata.var[{key!r}] has {int(labels.isna().sum())} genes without a cluster label"
        raise ValueError(msg)
    clusters = [c for c in labels.cat.categories]
    x = adata.X if layer is None else adata.layers[layer]
    x = x.tocsr() if sp.issparse(x) else np.asarray(x)
    check_finite(x.data if sp.issparse(x) else x, "the expression matrix")

    onehot = (labels.to_numpy()[:, None] == np.asarray(clusters)[None, :]).astype(np.float64)
    soft_key = f"{key}_soft"
    used_soft = bool(use_soft and soft_key in adata.varm)
    if used_soft:
        soft = np.asarray(adata.varm[soft_key], dtype=np.float64)
        if soft.ndim != 2:
            msg = f"adata.varm[{soft_key!r}] must be (n_vars, n_clusters), got shape {soft.shape}"
            raise ValueError(msg)
        weights = onehot * soft[:, soft_columns(clusters, soft.shape[1], soft_key, key)]
    else:
        weights = onehot

    mean, sd = _gene_mean_sd(x)
    ok = sd > 0
    weights[~ok] = 0.0
    total = weights.sum(axis=0)
    w = weights / np.where(total > 0, total, 1.0)  # (n_genes, K), columns sum to 1 (or 0)
    w_sd = w / np.where(ok, sd, 1.0)[:, None]
    # z-scores times weights, summed over genes: X @ (w / sd) - (mean / sd) @ w
    scores = np.asarray(x @ w_sd) - (mean @ w_sd)[None, :]
    scores[:, total == 0] = np.nan  # a cluster of constant genes has no score
    names = [str(c) for c in clusters]
    frame = pd.DataFrame(scores.astype(np.float32), index=adata.obs_names, columns=names)
    adata.obsm[key_added] = frame
    # the obs columns of an earlier run under this key (another K) would be left stale
    previous = adata.uns.get(key_added, {})
    stale = previous.get("obs_columns", []) if isinstance(previous, dict) else []
    adata.obs = adata.obs.drop(columns=[c for c in stale if c in adata.obs.columns])
    obs_columns = []
    if add_to_obs:
        for c in names:
            col = f"{key_added}_{c}"
            adata.obs[col] = frame[c].to_numpy()
            obs_columns.append(col)
    adata.uns[key_added] = {
        "params": {"key": key, "layer": "X" if layer is None else layer, "use_soft": used_soft},
        "obs_columns": obs_columns,
    }
    logg.info(
        f"scored {adata.n_obs} spots for {len(names)} gene clusters of {key!r}",
        deep=f"added\n    {key_added!r}, module scores (adata.obsm)"
        + (f"\n    {len(obs_columns)} columns '{key_added}_<k>' (adata.obs)" if add_to_obs else ""),
    )
    return adata if copy else None


def _gene_mean_sd(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and population standard deviation over spots (sparse or dense)."""
    n = x.shape[0]
    if sp.issparse(x):
        mean = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
        sq = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel() / n
    else:
        x64 = np.asarray(x, dtype=np.float64)
        mean = x64.mean(axis=0)
        sq = (x64**2).mean(axis=0)
    var = np.maximum(sq - mean**2, 0.0)
    sd = np.sqrt(var)
    sd[sd <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 0.0
    return mean, sd
