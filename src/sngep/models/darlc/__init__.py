"""DARLC internals (torch): GAT denoiser, ViT/MAE, contrastive branch, SMM, joint training."""

from sngep.models.darlc.config import PRESETS, DARLCConfig
from sngep.models.darlc.model import DARLC

__all__ = ["DARLC", "DARLCConfig", "PRESETS"]
