"""Benchmark (not a test): does the loop learn? Asked so that it can answer, on CoLLM ML-1M through
the real stage functions, with paired bootstrap 95% intervals over users and controls in the same run.

    python bench/loop_quality.py [--profile cpu|gpu] [--config FILE] [--out DIR]

Evaluation: the temporal split over all users (V trains on train-period samples, is judged on the
latest test-period samples of `eval_users` users, chooses its learning rate on their valid-period
samples), and beside it the user-disjoint view (held-out users V never trained on).
E0/E1  V reads a short window (llm.generation.validator_items) and a summary: the teacher's of the
       long history, the teacher's of V's own window, none, the long one of another user, the answer
       stated; priors: the like-rate of V's window, of the long history, both (logistic regression);
       a capacity ladder (LoRA on the top 6 layers, on all, full fine-tuning) on the two teacher arms.
G0     distilled >= 100 optimiser steps on the teacher; its loss curve, a held-out sample of its text.
E2     alignment under a fixed V, gated on the room (best-of-N minus greedy reward) against the held-out
       interval; arms aligned / shuffled / negated rewards; readouts under V and a V of other users,
       KL to G0, share changed, trl's margins (quality/alignment.py).
E2_ctr the same under DPO4Rec's CTR judge trained with several G0 RecCoTs per user on other users,
       gated also on two judges agreeing.

Profiles (quality/work.py): `cpu` fits about an hour on a 2-core CPU at reduced sizes; `gpu` one
H100/H200 within 8 minutes. Writes results.json and PNGs to --out; the work folder under it is kept,
so a second run re-uses finished steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from quality.alignment import generator_zero, judge_alignment, latest_rows, samples_with, validator_alignment
from quality.report import draw, print_results, write_results
from quality.validator import Validators, arm_texts, validator_experiments
from quality.work import PROFILES, Profile, Work

from trackrec.config import load_config
from trackrec.llm.adapters import load_tokenizer
from trackrec.llm.base_model import resolve_model
from trackrec.llm.config import LLMConfig
from trackrec.run_config import RunConfig
from trackrec.stages.distill import teacher_reccots
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import prompt_builder, read_samples
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.select_samples import select_samples

CONFIGS = {
    "cpu": Path("configs/local.yaml"),
    "smoke": Path("configs/local.yaml"),
    "gpu": Path("configs/quality-gpu.yaml"),
}


def sized(llm: LLMConfig, profile: Profile) -> LLMConfig:
    """The config's loop at the profile's sizes, with the offline teacher (the base teaching itself
    transfers nothing)."""
    subset = dataclasses.replace(
        llm.subset,
        train_samples=profile.train_samples,
        train_per_user=profile.train_per_user,
        split="time",
        eval_users=profile.eval_users,
        eval_per_user=profile.eval_per_user,
        distill_fraction=1.0,  # every user's latest sample; G0 reads `distill_rows` of them
    )
    generation = dataclasses.replace(
        llm.generation,
        history_tokens=profile.history_tokens,
        max_new_tokens=profile.max_new_tokens,
        samples=profile.samples,
        batch_size=profile.batch_size,
    )
    distill_train = dataclasses.replace(llm.distill_train, epochs=1.0, batch_size=profile.distill_batch)
    teacher = dataclasses.replace(llm.teacher, kind="profile")
    return dataclasses.replace(llm, subset=subset, generation=generation, distill_train=distill_train, teacher=teacher)


def machine() -> str:
    import torch

    from trackrec.cpus import available_cpus

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    rate = 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9
    return f"CPU, {available_cpus()} cores, 2048^2 float32 matmul {rate:.0f} GFLOP/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--config", type=Path, help="the run config whose loop is measured (default per profile)")
    parser.add_argument("--out", type=Path, help="default runs/bench/loop_quality-<profile>")
    parser.add_argument(
        "--align-anyway", action="store_true", help="run E2's arms where a gate fails (marked so in the results)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    profile = PROFILES[args.profile]
    out = args.out or Path(f"runs/bench/loop_quality-{args.profile}")
    config = load_config(args.config or CONFIGS[args.profile], RunConfig)
    llm = sized(config.llm, profile)
    work = Work(out / "work")
    data = work.step("data", lambda o: prepare_data(config.data, o))
    samples = work.step("samples", lambda o: select_samples(data, llm.subset, o))
    frames = {
        "train": read_samples(samples, "train"),
        "valid": read_samples(samples, "valid").groupby("user_id").tail(1),
        "eval": read_samples(samples, "eval"),
    }
    builder = prompt_builder(llm, load_tokenizer(llm.base), "bench")
    texts = arm_texts(work, llm, builder, samples, frames)
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(resolve_model(llm.base)).num_hidden_layers
    validators = Validators(work, llm, samples, frames, texts, layers)
    train_users = set(frames["train"].user_id)
    results = {"settings": settings(args.profile, profile, llm, frames, machine())}
    e0 = validator_experiments(validators, builder, profile.learning_rates, train_users)
    results["E0"] = e0
    write_results(out, results)

    g0, info = generator_zero(work, llm, samples, profile)
    rows = latest_rows(data, "valid", train_users, profile.align_users, 1, seed=3)
    rate = e0["choices"]["top6"]["learning_rate"]
    validator = validators.train("teacher_long", "top6", rate)

    def second_validator() -> Path:  # V' on other users: trained only when alignment runs
        taken = train_users | set(rows.user_id)
        other = latest_rows(data, "train", taken, len(train_users), profile.train_per_user, seed=4)
        folder = work.step("samples-other-users", lambda o: samples_with(samples, o, train=other))
        validators.texts["teacher_long_other"] = work.texts(
            "texts-teacher_long-other", {"train": other}, lambda s, f: teacher_reccots(llm, builder, f, samples)
        )
        return validators.train("teacher_long_other", "top6", rate, samples=folder)

    results["E2"] = validator_alignment(
        work, llm, samples, rows, g0, validator, second_validator, profile, args.align_anyway
    )
    held = read_samples(samples, "eval")
    g0_texts = read_reccots(work.root / "greedy-G0", "eval", held)
    info["held_out_sample"] = [
        {"teacher": t, "G0": g}
        for t, g in zip(read_reccots(texts["teacher_long"], "eval", held)[:2], g0_texts[:2], strict=True)
    ]
    results["G0"] = {"info": info}
    write_results(out, results)
    taken = train_users | set(rows.user_id)
    results["E2_ctr"] = judge_alignment(work, config, llm, data, samples, rows, g0, profile, taken, args.align_anyway)
    results["settings"]["wall_s"] = time.perf_counter() - started
    results["settings"]["step_seconds"] = work.seconds
    write_results(out, results)
    draw(results, out)
    print_results(results, out)


def settings(name: str, profile: Profile, llm: LLMConfig, frames: dict, machine_name: str) -> dict:
    held = frames["eval"]
    return {
        "profile": name,
        "sizes": dataclasses.asdict(profile),
        "train_rows": len(frames["train"]),
        "train_users": int(frames["train"].user_id.nunique()),
        "valid_rows": len(frames["valid"]),
        "eval_rows": len(held),
        "eval_users": int(held.user_id.nunique()),
        "eval_liked": int(np.sum(held.label)),
        "validator_items": llm.generation.validator_items,
        "base": llm.base,
        "lora": dataclasses.asdict(llm.lora),
        "rectune_train": dataclasses.asdict(llm.rectune_train),
        "distill_train": dataclasses.asdict(llm.distill_train),
        "align_train": dataclasses.asdict(llm.align_train),
        "beta": llm.beta,
        "machine": machine_name,
    }


if __name__ == "__main__":
    main()
