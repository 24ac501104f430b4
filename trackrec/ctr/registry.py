"""Builds a backbone by its name in BACKBONES (trackrec/ctr/config.py), importing only its module."""

from __future__ import annotations

import dataclasses
import importlib

from torch import nn

from trackrec.ctr.config import BACKBONES, ModelConfig
from trackrec.ctr.features import FeatureSpec


def build_model(name: str, spec: FeatureSpec, config: ModelConfig) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    module, cls = BACKBONES[name]
    return getattr(importlib.import_module(module), cls)(dataclasses.replace(spec, user_ids=config.user_id), config)
