"""Input handling shared by the clustering metrics (array-based, no AnnData)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def encode_labels(
    labels, n: int | None = None, what: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes ``0..K-1`` and the unique labels, from any 1-D label array.

    Accepts numpy arrays, lists, pandas Series or Categoricals of ints or strings.
    Unused categories are ignored. Missing labels (NaN/None) raise.
    """
    series = pd.Series(labels) if not isinstance(labels, pd.Series) else labels
    if series.ndim != 1:
        msg = f"{what} must be one-dimensional"
        raise ValueError(msg)
    if n is not None and len(series) != n:
        msg = f"{what} has {len(series)} entries but there are {n} images; pass one label per image"
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
    """``(N, P)`` float64 matrix from ``(N, H, W)`` or ``(N, P)`` images, masked pixels only."""
    x = np.asarray(images)
    if x.ndim not in (2, 3):
        msg = f"images must be (N, H, W) or (N, P), got shape {x.shape}"
        raise ValueError(msg)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
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
