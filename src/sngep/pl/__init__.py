"""Plotting: gene images per cluster, the eigengap, training curves."""

from sngep.pl._eigengap import eigengap
from sngep.pl._gene_clusters import gene_clusters
from sngep.pl._training_history import training_history

__all__ = ["eigengap", "gene_clusters", "training_history"]
