"""Clustering metrics computed on gene images (a space every method shares)."""

from sngep.metrics._dbi import dbi_euclidean, dbi_pearson
from sngep.metrics._labels import ari, nmi
from sngep.metrics._sam import sam

__all__ = ["ari", "dbi_euclidean", "dbi_pearson", "nmi", "sam"]
