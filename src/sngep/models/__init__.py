"""Torch models. Importing this subpackage does not import torch; ``sngep.models.darlc`` does."""
