"""The main job on one machine: a plain sequence of stage calls, every artifact in one run folder.

prepare_data -> [select_samples -> distill -> greedy -> rectune -> evaluate (iteration 0)
-> T x (sample -> score -> align -> greedy -> rectune -> evaluate) -> report
-> [summarize -> encode -> publish]] -> train_ctr (with the RecCoT vectors when encoded).
Each stage writes its folder whole (atomically); a `.done` file beside its outputs records a
fingerprint of its config and of its inputs' fingerprints, so a re-run skips exactly the stages
whose config and upstream are unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trackrec.config import Config, config_to_dict, field
from trackrec.data.dataset import DataConfig
from trackrec.llm.report import write_report
from trackrec.llm.training import last_loss
from trackrec.stages.align import align
from trackrec.stages.distill import distill
from trackrec.stages.encode import encode
from trackrec.stages.evaluate import evaluate
from trackrec.stages.greedy import greedy
from trackrec.stages.llm_config import LLMConfig, check_context
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.publish import FeaturesConfig, publish
from trackrec.stages.rectune import rectune
from trackrec.stages.sample import sample
from trackrec.stages.score import score
from trackrec.stages.select_samples import select_samples
from trackrec.stages.summarize import summarize
from trackrec.stages.train_ctr import CTRConfig, train_ctr


@dataclass
class RunConfig(Config):
    """The main job; `features` needs `llm` (the RecCoTs come from the loop's last G)."""

    run_dir: str = field("runs/local", help="folder that receives every artifact of the run")
    data: DataConfig = field(factory=DataConfig, help="prepare_data stage")
    llm: LLMConfig | None = field(None, help="the RecCoT loop; none: data and CTR only")
    features: FeaturesConfig | None = field(
        None, help="RecCoT features of G(T) into Feast and the CTR model; needs llm"
    )
    ctr: CTRConfig = field(factory=CTRConfig, help="train_ctr stage")

    def problems(self) -> list[str]:
        if self.features is not None and self.llm is None:
            return ["features: needs an llm section (the RecCoTs come from the loop's last G)"]
        return []


@dataclass(frozen=True)
class Output:
    path: Path
    fingerprint: str


class Stages:
    """Runs a stage unless its output is complete and was built from the same config and inputs."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log

    def __call__(self, name: str, path: Path, config, inputs: list[Output], build: Callable[[Path], object]) -> Output:
        key = json.dumps({"stage": name, "config": config, "inputs": [i.fingerprint for i in inputs]}, sort_keys=True)
        fingerprint = hashlib.sha256(key.encode()).hexdigest()
        done = path / ".done"
        if done.exists() and done.read_text() == fingerprint:
            self.log(f"{name}: {path} is complete, skipped")
        else:
            start = time.perf_counter()
            result = build(path)
            done.write_text(fingerprint)
            self.log(f"{name}: {_summary(result)} -> {path} ({time.perf_counter() - start:.0f} s)")
        return Output(path, fingerprint)


def _summary(result) -> str:
    if isinstance(result, list):  # a trainer's log: its last loss
        loss = last_loss(result)
        return "nothing to train" if loss is None else f"trained, last loss {loss:.4f}"
    text = json.dumps(result, default=str)
    return text if len(text) < 200 else text[:197] + "..."


def _adapter(output: Output | None) -> Path | None:
    return None if output is None else output.path / "adapter"


def run_llm(llm: LLMConfig, data: Output, folder: Path, stage: Stages) -> tuple[list[dict], Output]:
    """Distillation, iteration 0, T alternating iterations; returns the per-iteration metrics and G(T)."""
    check_context(llm)
    config = config_to_dict(llm) | {"iterations": None}  # T does not change what one stage computes
    subset = stage(
        "select_samples", folder / "samples", config, [data], lambda out: select_samples(data.path, llm.subset, out)
    )
    samples = subset.path
    g = stage("distill", folder / "iter0" / "distill", config, [subset], lambda out: distill(samples, llm, out))
    v = None
    rows = []
    for t in range(llm.iterations + 1):
        it = folder / f"iter{t}"
        if t > 0:
            g_prev, v_prev = g, v
            sampled = stage(
                "sample",
                it / "sample",
                config,
                [subset, g_prev],
                lambda out, g_prev=g_prev, t=t: sample(samples, _adapter(g_prev), llm, out, llm.generation.seed + t),
            )
            scored = stage(
                "score",
                it / "score",
                config,
                [sampled, v_prev],
                lambda out, s=sampled, v_prev=v_prev: score(samples, s.path, _adapter(v_prev), llm, out),
            )
            g = stage(
                "align",
                it / "align",
                config,
                [scored, g_prev],
                lambda out, s=scored, g_prev=g_prev: align(s.path, _adapter(g_prev), llm, out),
            )
        greedy_out = stage(
            "greedy", it / "greedy", config, [subset, g], lambda out, g=g: greedy(samples, _adapter(g), llm, out)
        )
        v = stage(
            "rectune",
            it / "rectune",
            config,
            [greedy_out] + ([v] if v else []),
            lambda out, gr=greedy_out, v_prev=v: rectune(samples, gr.path, _adapter(v_prev), llm, out),
        )
        evaluated = stage(
            "evaluate",
            it / "evaluate",
            config,
            [greedy_out, v],
            lambda out, gr=greedy_out, v=v: evaluate(samples, gr.path, _adapter(v), llm, out),
        )
        row = {"iteration": t, **json.loads((evaluated.path / "metrics.json").read_text())}
        if t > 0:
            stats = json.loads((scored.path / "stats.json").read_text())
            row |= {"sampled_mean_reward": stats["mean_reward"], "sampled_chosen_reward": stats["mean_chosen_reward"]}
        rows.append(row)
    write_report(rows, folder)
    return rows, g


def run_features(
    features: FeaturesConfig, llm: LLMConfig, data: Output, generator: Output, folder: Path, stage: Stages
) -> tuple[Output, int]:
    """G(T)'s RecCoT per user, encoded and published; returns the embeddings and their size."""
    reccots = stage(
        "summarize",
        folder / "reccots",
        {"users": features.users, "seed": features.seed, "llm": config_to_dict(llm)},
        [data, generator],
        lambda out: summarize(data.path, _adapter(generator), llm, out, llm.iterations, features.users, features.seed),
    )
    encoded = stage(
        "encode",
        folder / "embeddings",
        config_to_dict(features.encoder),
        [reccots],
        lambda out: encode(reccots.path, features.encoder, out),
    )
    version = f"run_{encoded.fingerprint[:12]}"  # a new version whenever the vectors change
    stage(
        "publish",
        folder / "published",
        config_to_dict(features),
        [encoded],
        lambda out: publish(encoded.path, version, features, out),
    )
    return encoded, json.loads((encoded.path / "meta.json").read_text())["dim"]


def run(config: RunConfig, log=print) -> dict:
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2))
    stage = Stages(log)
    data = stage(
        "prepare_data",
        run_dir / "data",
        config_to_dict(config.data),
        [],
        lambda out: prepare_data(config.data, out).meta["rows"],
    )
    result = {}
    ctr, ctr_inputs = config.ctr, [data]
    if config.llm is not None:
        result["llm"], generator = run_llm(config.llm, data, run_dir / "llm", stage)
        log(f"llm: report -> {run_dir / 'llm' / 'report.html'}")
        if config.features is not None:
            encoded, dim = run_features(config.features, config.llm, data, generator, run_dir / "features", stage)
            vectors = str(encoded.path / "embeddings.parquet")
            ctr = dataclasses.replace(config.ctr, user_vectors=vectors, dense_dim=dim)
            ctr_inputs.append(encoded)
    ctr_dir = run_dir / "ctr"
    stage(
        "train_ctr",
        ctr_dir,
        config_to_dict(ctr),
        ctr_inputs,
        lambda out: train_ctr(data.path, ctr, out)["test"],
    )
    result["ctr"] = json.loads((ctr_dir / "metrics.json").read_text())
    return result
