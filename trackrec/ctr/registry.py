"""Backbone names, in one place."""

from __future__ import annotations

from torch import nn

from trackrec.ctr.autoint import AutoInt
from trackrec.ctr.config import ModelConfig
from trackrec.ctr.dcn import DCN
from trackrec.ctr.deepfm import DeepFM
from trackrec.ctr.dien import DIEN
from trackrec.ctr.din import DIN
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.fibinet import FiBiNET
from trackrec.ctr.fignn import FiGNN

BACKBONES: dict[str, type[nn.Module]] = {
    "din": DIN,
    "deepfm": DeepFM,
    "dcn": DCN,
    "autoint": AutoInt,
    "fignn": FiGNN,
    "fibinet": FiBiNET,
    "dien": DIEN,
}


def build_model(name: str, spec: FeatureSpec, config: ModelConfig) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](spec, config)
