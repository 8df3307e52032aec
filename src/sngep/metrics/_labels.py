"""Agreement with reference labels: NMI and ARI (scikit-learn, any label type)."""

from __future__ import annotations

from typing import Literal

from numpy.typing import ArrayLike

from sngep.metrics._common import encode_labels


def _pair(labels_true: ArrayLike, labels_pred: ArrayLike):
    t, _ = encode_labels(labels_true, what="labels_true")
    p, _ = encode_labels(labels_pred, n=len(t), what="labels_pred")
    return t, p


def nmi(
    labels_true: ArrayLike,
    labels_pred: ArrayLike,
    *,
    average_method: Literal["min", "geometric", "arithmetic", "max"] = "arithmetic",
) -> float:
    """Normalised mutual information between two labelings (0 to 1, higher is better).

    :func:`sklearn.metrics.normalized_mutual_info_score`; labels may be ints, strings or
    pandas Categoricals (unused categories are ignored). Missing labels raise.

    Parameters
    ----------
    labels_true
        Reference labels, one per gene.
    labels_pred
        Cluster labels, one per gene.
    average_method
        Normaliser of the mutual information (scikit-learn's default, ``'arithmetic'``).

    Returns
    -------
    The NMI (float).
    """
    from sklearn.metrics import normalized_mutual_info_score

    t, p = _pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(t, p, average_method=average_method))


def ari(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Adjusted Rand index between two labelings (1 = identical partitions, ~0 = chance).

    :func:`sklearn.metrics.adjusted_rand_score`; labels may be ints, strings or pandas
    Categoricals (unused categories are ignored). Missing labels raise.

    Parameters
    ----------
    labels_true
        Reference labels, one per gene.
    labels_pred
        Cluster labels, one per gene.

    Returns
    -------
    The ARI (float).
    """
    from sklearn.metrics import adjusted_rand_score

    t, p = _pair(labels_true, labels_pred)
    return float(adjusted_rand_score(t, p))
