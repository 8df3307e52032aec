"""Preprocessing: spatial expression -> gene images, their standardisation; gene pre-selection."""

from sngep.pp._gene_images import gene_images
from sngep.pp._images_from_array import images_from_array
from sngep.pp._spatial_genes import spatial_genes
from sngep.pp._standardize import standardize_images

__all__ = ["gene_images", "images_from_array", "spatial_genes", "standardize_images"]
