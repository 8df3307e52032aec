"""Input handling shared by the clustering metrics (array-based, no AnnData)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def encode_labels(
    labels, n: int | None = None, what: str = "labels", of: str = "image"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes ``0..K-1`` and the unique labels, from any 1-D label array.

    Accepts numpy arrays, lists, pandas Series or Categoricals of ints or strings.
    Unused categories are ignored. Missing labels (NaN/None) raise. ``n`` is the number of
    labels expected, one per ``of`` (``'image'`` or ``'gene'``, for the messages).
    """
    if isinstance(labels, str | bytes) or (
        not isinstance(labels, pd.Series | pd.Categorical) and np.ndim(labels) != 1
    ):
        shape = "a string" if isinstance(labels, str | bytes) else f"shape {np.shape(labels)}"
        msg = f"{what} must be one-dimensional (one label per {of}), got {shape}"
        raise ValueError(msg)
    series = pd.Series(labels) if not isinstance(labels, pd.Series) else labels
    if n is not None and len(series) != n:
        msg = f"{what} has {len(series)} entries but there are {n} {of}s; pass one label per {of}"
        raise ValueError(msg)
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # mixed, unorderable labels
        codes, uniques = pd.factorize(series, sort=False)
    if (codes < 0).any():
        n_missing = int((codes < 0).sum())
        msg = f"{what} contains {n_missing} missing values; drop or label those images first"
        raise ValueError(msg)
    return codes.astype(np.int64), np.asarray(uniques)


def flatten_images(images, mask=None) -> np.ndarray:
    """``(N, P)`` float64 matrix from ``(N, H, W)`` or ``(N, P)`` images, masked pixels only.

    ``images`` may be a dense array or a sparse ``(N, P)`` matrix (densified).
    """
    if hasattr(images, "varm") and hasattr(images, "obsm"):  # an AnnData
        msg = (
            "images must be an array, not an AnnData; pass adata.varm['gene_images'] "
            "(and mask=adata.uns['gene_images']['mask'])"
        )
        raise TypeError(msg)
    x = images.toarray() if sp.issparse(images) else np.asarray(images)
    if x.ndim not in (2, 3):
        msg = f"images must be (N, H, W) or (N, P), got shape {x.shape}"
        raise ValueError(msg)
    if x.shape[0] == 0:
        msg = f"images is empty: shape {x.shape}"
        raise ValueError(msg)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            msg = (
                "mask must be boolean (True inside the tissue), e.g. "
                "adata.uns['gene_images']['mask']"
            )
            raise ValueError(msg)
        mask = mask.astype(bool)
        if mask.shape != x.shape[1:]:
            msg = f"mask has shape {mask.shape}, images are {x.shape[1:]} per image"
            raise ValueError(msg)
        x = x[:, mask]
    x = x.reshape(x.shape[0], -1).astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        msg = "images contain NaN or infinite values"
        raise ValueError(msg)
    if x.shape[1] == 0:
        msg = "no pixels left (empty mask?)"
        raise ValueError(msg)
    return x


def cluster_means(x: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """``(K, P)`` mean image of each cluster."""
    counts = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    onehot = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_clusters, codes.size)
    )
    return np.asarray(onehot @ x) / counts[:, None]


def prepare(images, labels, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, codes, uniques)`` after validating that images and labels match."""
    x = flatten_images(images, mask)
    codes, uniques = encode_labels(labels, n=x.shape[0])
    return x, codes, uniques
