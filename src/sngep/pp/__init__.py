"""Preprocessing: spatial expression -> gene images."""

from sngep.pp._gene_images import gene_images
from sngep.pp._images_from_array import images_from_array

__all__ = ["gene_images", "images_from_array"]
