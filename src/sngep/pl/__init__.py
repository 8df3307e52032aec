"""Plotting: gene images per cluster, patterns, similarity, eigengap, training, enrichment."""

from sngep.pl._cluster_patterns import cluster_patterns
from sngep.pl._eigengap import eigengap
from sngep.pl._gene_clusters import gene_clusters
from sngep.pl._module_enrichment import module_enrichment
from sngep.pl._similarity import similarity
from sngep.pl._training_history import training_history

__all__ = [
    "cluster_patterns",
    "eigengap",
    "gene_clusters",
    "module_enrichment",
    "similarity",
    "training_history",
]
