"""Spectral angle mapper (SAM) intra-cluster similarity (main text 4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sngep.metrics._common import cluster_means, prepare


def sam(
    images: ArrayLike,
    labels: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    per_cluster: bool = False,
) -> float | pd.Series:
    """Spectral angle mapper: mean angle between genes and their cluster's mean image.

    For gene ``u`` in cluster ``c`` with mean image ``m_c`` (over the cluster's members),
    the spectral angle is ``theta_u = arccos(<x_u, m_c> / (||x_u|| ||m_c||))`` in radians,
    in ``[0, pi]`` (``[0, pi/2]`` for non-negative images). The SAM of a cluster is the
    mean ``theta`` of its members; the returned score is the unweighted mean over clusters.
    Lower means more similar images within clusters (0: every member is a positive
    multiple of its cluster mean). The angle is scale-invariant but, unlike the Pearson
    distance, not shift-invariant. The paper uses per-cluster SAM to split clusters into
    high- and medium-quality groups (``per_cluster=True``).

    An all-zero image (or an all-zero cluster mean) has no direction; its angle counts as
    ``pi / 2`` (orthogonal: no similarity). A single cluster is allowed.

    Parameters
    ----------
    images
        ``(N, H, W)`` or ``(N, P)`` array, one image per gene.
    labels
        ``N`` cluster labels (ints, strings or a pandas Categorical).
    mask
        Boolean ``(H, W)`` (or ``(P,)``) mask of the pixels to use.
    per_cluster
        Return the SAM of every cluster instead of their mean.

    Returns
    -------
    The mean SAM over clusters (float), or a :class:`pandas.Series` of per-cluster SAM
    indexed by cluster label (sorted).
    """
    x, codes, uniques = prepare(images, labels, mask)
    k = len(uniques)
    means = cluster_means(x, codes, k)
    m = means[codes]
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(m, axis=1)
    dots = np.einsum("ij,ij->i", x, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dots / norms, 0.0)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    per = np.bincount(codes, weights=theta, minlength=k) / np.bincount(codes, minlength=k)
    if per_cluster:
        return pd.Series(per, index=pd.Index(uniques, name="cluster"), name="sam")
    return float(per.mean())
