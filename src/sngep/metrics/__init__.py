"""Clustering metrics: on gene images (a space every method shares) and on Gene Ontology."""

from sngep.metrics._dbi import dbi_euclidean, dbi_pearson
from sngep.metrics._go import go_module_scores, go_pair_lift
from sngep.metrics._labels import ari, nmi
from sngep.metrics._sam import sam

__all__ = [
    "ari",
    "dbi_euclidean",
    "dbi_pearson",
    "go_module_scores",
    "go_pair_lift",
    "nmi",
    "sam",
]
