"""CTR backbones with an optional RecCoT vector through an MLP connector (paper eq. 7-8)."""

from trackrec.ctr.registry import BACKBONES, build_model

__all__ = ["BACKBONES", "build_model"]
