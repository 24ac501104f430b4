"""The main job's config, and its split into the sections each pipeline stage reads.

Each component is handed only its own section, so a changed section re-runs exactly the stages
that read it (and, through their outputs, those downstream); the rest come from KFP's cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from trackrec.config import Config, config_from_dict, config_to_dict, field, read_yaml
from trackrec.ctr.config import CTRConfig
from trackrec.data.config import DataConfig
from trackrec.errors import ConfigError
from trackrec.features.config import FeaturesConfig, UserDraw
from trackrec.features.encoder import EncoderConfig
from trackrec.llm.config import LLMConfig
from trackrec.paths import RUN_DIR, feast_repo
from trackrec.reach import Reach
from trackrec.reach import problems as reach_problems

# Each stage's share of the config: summarize reads only which users and when (draw), encode only the encoder,
# publish the whole features section (store, arm); so a new arm re-runs publish alone, and a new
# ctr section retrains the final CTR model without touching the loop (its judge has its own).
SECTIONS = ("data", "llm", "draw", "encoder", "features", "ctr", "judge")


@dataclass
class JudgeConfig(Config):
    """The loop's CTR judge (stage ctr_judge): trained on G(t)'s RecCoTs each iteration, its test AUC
    is the report's CTR curve and, with llm.reward: ctr, it is DPO4Rec's reward model."""

    ctr: CTRConfig = field(
        factory=CTRConfig, help="its backbone and training (the RecCoT vectors are set by the stage)"
    )
    encoder: EncoderConfig = field(factory=EncoderConfig, help="encodes the RecCoTs it reads")


@dataclass
class RunConfig(Config):
    """The main job; `features` needs `llm` (the RecCoTs come from the loop's last G)."""

    data: DataConfig = field(factory=DataConfig, help="prepare_data stage")
    llm: LLMConfig | None = field(None, help="the RecCoT loop; none: data and CTR only")
    features: FeaturesConfig | None = field(
        None, help="RecCoT features of G(T) into Feast and the CTR model; needs llm"
    )
    ctr: CTRConfig = field(factory=CTRConfig, help="train_ctr stage")
    judge: JudgeConfig = field(factory=JudgeConfig, help="the loop's CTR judge, one per iteration (read only with llm)")

    def problems(self) -> list[str]:
        if self.features is not None and self.llm is None:
            return ["features: needs an llm section (the RecCoTs come from the loop's last G)"]
        ttl = None if self.features is None else self.features.store.ttl_days
        return [
            f"{name}.vector_ttl_days: set by features.store.ttl_days ({ttl}), got {ctr.vector_ttl_days}"
            for name, ctr in (("ctr", self.ctr), ("judge.ctr", self.judge.ctr))
            if ctr.vector_ttl_days not in (None, ttl)
        ]


def load_run_config(path: str | os.PathLike, run_dir: str | os.PathLike = RUN_DIR) -> RunConfig:
    """`path`'s run config for a local run in the folder `run_dir`: a features store that names no
    repo publishes to the run folder's (`<run_dir>/feast`); one that names a repo keeps it."""
    raw = read_yaml(Path(path))
    features = raw.get("features") if isinstance(raw, dict) else None
    if isinstance(features, dict) and isinstance(store := features.setdefault("store", {}), dict):
        store.setdefault("repo", str(feast_repo(run_dir)))
    return config_from_dict(RunConfig, raw, str(path))


def split_sections(text: str, iterations: int, features: bool, reach: Reach | None = None) -> dict[str, str]:
    """Check a run config (JSON) against the pipeline's compiled shape and what the deployment lets a
    run reach (none: unchecked), and split it into sections (JSON each; "null" for an absent one).
    Raises ConfigError naming every problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("config", [f"not valid JSON: {e}"]) from e
    config = config_from_dict(RunConfig, raw, "config")
    shape = []
    got = None if config.llm is None else config.llm.iterations
    if got != (iterations or None):
        shape.append(f"llm.iterations: this pipeline was compiled for T={iterations or None}, the config says {got}")
    if (config.features is not None) != features:
        shape.append(f"features: this pipeline was compiled {'with' if features else 'without'} the features stages")
    if shape:
        raise ConfigError("config", shape + ["compile a pipeline of the config's shape: trackrec compile --config"])
    plain = config_to_dict(config)
    if config.features is not None:  # the CTR models join snapshots as the store does: the same TTL
        for ctr in (plain["ctr"], plain["judge"]["ctr"]):
            ctr["vector_ttl_days"] = config.features.store.ttl_days
    outside = [] if reach is None else reach_problems(plain, reach)
    if outside:
        raise ConfigError("config", outside + ["what a run may reach is set by the deployment's settings"])
    features = plain["features"] or {}
    if features:
        draw = UserDraw(config.features.users, config.features.seed, config.features.snapshots)
        plain["draw"] = config_to_dict(draw)
    else:
        plain["draw"] = None
    plain["encoder"] = features.get("encoder")
    return {name: json.dumps(plain[name], sort_keys=True) for name in SECTIONS}


def section(cls: type, text: str, name: str):
    """One section back from its JSON."""
    return config_from_dict(cls, json.loads(text), name)
