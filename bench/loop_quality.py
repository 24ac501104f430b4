"""Benchmark (not a test): does the loop learn? E0-E2 on CoLLM ML-1M through the real stage functions,
with paired bootstrap 95% intervals over a fixed held-out set of users.

    python bench/loop_quality.py [--config configs/local.yaml] [--train-users 600] [--eval-users 400]
                                 [--align-users 300] [--out runs/bench/loop_quality]

E0_validator  V Rec-tuned on label-balanced train users with the teacher's RecCoT; controls in the
              same run: a summary that states the answer (AUC near 1: the label chain's polarity),
              shuffled train labels (near 0.5), and the user's like-rate as the score (the prior).
E1_channel    V Rec-tuned with an empty summary, G0's RecCoT and the teacher's: does a summary carry
              signal at all?
E2_alignment  one S-DPO round of G0 under that fixed V on `align-users` train users; the held-out
              greedy reward of G1 minus G0, judged by V and by a second V trained with another seed,
              against G1' aligned on shuffled rewards (the same data with the preference made random).
E2_alignment_ctr  the same round with DPO4Rec's reward (`llm.reward: ctr`, best vs worst DPO): the
              CTR judge (the judge section) trained with G0's RecCoT of every user scores G0's samples; the
              held-out gain of G1 over G0 under that judge and under a second judge trained with
              another seed, against G1' aligned on shuffled rewards.
E3_ctr        a RecCoT for every user at the training cut-off from the teacher, G0 and G1, encoded;
              each CTR backbone trained with none / random / teacher / G0 / G1 user vectors over
              several seeds; test AUC differences paired by seed, with a t-interval across seeds.

The teacher is the configured one (the offline `profile` teacher unless the config names a server).
Writes results.json (one object per experiment: estimate, ci_low, ci_high, settings) and one PNG
per experiment to --out; the work folder under it is kept, so a second run re-uses finished stages.
A run of some experiments (`--only`) keeps the others' objects already in results.json: each object
carries its own settings (machine, sizes, wall seconds).

`--only E3 --adapters G0 G1` runs E3 alone with G0's and G1's LoRA adapters from an earlier run, e.g.
E0-E2 on a GPU machine whose work folder is too large to bring back, and E3's CTR training here;
`--only E2ctr --adapters G0` runs E2_alignment_ctr alone from G0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from trackrec.config import load_config  # noqa: E402
from trackrec.data.dataset import Dataset  # noqa: E402
from trackrec.data.snapshots import SnapshotConfig  # noqa: E402
from trackrec.features.encoder import EncoderConfig  # noqa: E402
from trackrec.features.vectors import random_unit_vectors  # noqa: E402
from trackrec.intervals import RESAMPLES, auc_difference, auc_of, bootstrap, like_rate, mean_of  # noqa: E402
from trackrec.llm.adapters import load_tokenizer  # noqa: E402
from trackrec.llm.reward import PreferenceMode, preference, reward  # noqa: E402
from trackrec.run_config import RunConfig  # noqa: E402
from trackrec.stages.align import align  # noqa: E402
from trackrec.stages.ctr_judge import judge_auc, judge_rewards, train_judge  # noqa: E402
from trackrec.stages.distill import distill, teach, teacher_reccots  # noqa: E402
from trackrec.stages.encode import encode  # noqa: E402
from trackrec.stages.greedy import greedy, read_reccots  # noqa: E402
from trackrec.stages.llm_common import adapter_in, prompt_builder, read_samples, validator_probs  # noqa: E402
from trackrec.stages.prepare_data import prepare_data  # noqa: E402
from trackrec.stages.rectune import rectune  # noqa: E402
from trackrec.stages.sample import sample  # noqa: E402
from trackrec.stages.score import preference_table, score  # noqa: E402
from trackrec.stages.select_samples import select_samples  # noqa: E402
from trackrec.stages.summarize import dataset_snapshots, summarize  # noqa: E402
from trackrec.stages.train_ctr import train_ctr  # noqa: E402

SPLIT_SNAPSHOTS = SnapshotConfig(every_days=None)  # as of each split's start, and now
ANSWER = {1: "The user will like the target movie.", 0: "The user will not like the target movie."}


class Work:
    """The bench's stage outputs under one folder; a finished stage (its folder exists) is not re-run."""

    def __init__(self, root: Path, llm):
        self.root, self.llm = root, llm
        self.root.mkdir(parents=True, exist_ok=True)

    def step(self, name: str, run: Callable[[Path], object]) -> Path:
        folder = self.root / name
        if not folder.exists():
            # written under another name and renamed when done: a step killed half-way is re-run
            partial = self.root / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            start = time.perf_counter()
            run(partial)
            partial.rename(folder)
            print(f"[bench] {name}: {time.perf_counter() - start:.0f} s", flush=True)
        return folder

    def reccots(self, name: str, samples: Path, texts: Callable[[str, pd.DataFrame], list[str]]) -> Path:
        """A greedy-stage-shaped folder of RecCoTs for the train and eval splits."""

        def run(folder: Path) -> None:
            tables = []
            for split in ("train", "eval"):
                frame = read_samples(samples, split)
                tables.append(pd.DataFrame({"split": split, "sample": frame.index, "reccot": texts(split, frame)}))
            folder.mkdir()
            pd.concat(tables, ignore_index=True).to_parquet(folder / "reccots.parquet")

        return self.step(name, run)

    def validator(self, name: str, samples: Path, reccots: Path, seed: int = 0) -> Path:
        llm = dataclasses.replace(self.llm, rectune_train=dataclasses.replace(self.llm.rectune_train, seed=seed))
        return adapter_in(self.step(name, lambda out: rectune(samples, reccots, None, llm, out)))

    def p_yes(self, validator: Path, samples: Path, reccots: Path, split: str = "eval") -> np.ndarray:
        """V's normalised P(Yes) per sample of `split` (cached beside V)."""
        cache = validator.parent / f"p_yes-{split}-{reccots.name}.npy"
        if not cache.exists():
            frame = read_samples(samples, split)
            probs = validator_probs(self.llm, validator, frame, read_reccots(reccots, split, frame), split)
            np.save(cache, probs[:, 0] / probs.sum(1))
        return np.load(cache)


def seed_interval(differences: list[float]) -> dict:
    """Mean and 95% t-interval across seeds of paired differences."""
    from scipy import stats

    values = np.asarray(differences)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    mean = float(values.mean())
    return {"estimate": mean, "ci_low": mean - float(half), "ci_high": mean + float(half), "seeds": values.tolist()}


def ctr_lift(work: Work, config, data: Path, samples: Path, generators: dict, args) -> dict:
    """E3: test AUC of each backbone with each user vector, differences paired by seed."""
    llm = work.llm

    def teacher_table(folder: Path) -> None:
        dataset = Dataset.open(data)
        frame = dataset.with_histories(dataset_snapshots(dataset, SPLIT_SNAPSHOTS))
        builder = prompt_builder(llm, load_tokenizer(llm.base), "user histories")
        folder.mkdir()
        reccots = teacher_reccots(llm, builder, frame, samples)
        table = pd.DataFrame({"user_id": frame.user_id.to_numpy(), "as_of": frame.as_of.to_numpy()})
        table.assign(reccot=reccots, iteration=-1).to_parquet(folder / "reccots.parquet")

    encoder = config.features.encoder if config.features else EncoderConfig()
    reccots = {"teacher": work.step("e3-reccots-teacher", teacher_table)}
    for t, (name, generator) in enumerate(generators.items()):
        reccots[name] = snapshot_reccots(work, data, name, generator, t)
    vectors = {
        name: work.step(f"e3-vectors-{name}", lambda out, r=folder: encode(r, encoder, out)) / "embeddings.parquet"
        for name, folder in reccots.items()
    }
    vectors["random"] = random_unit_vectors(vectors["teacher"], work.root / "e3-vectors-random.parquet", seed=0)
    aucs: dict = {}
    for backbone in args.backbones:
        for seed in range(args.seeds):
            for name, path in {"none": None, **vectors}.items():
                dim = 0 if path is None else len(pd.read_parquet(path).embedding.iloc[0])
                train = dataclasses.replace(config.ctr.train, seed=seed)
                ctr = dataclasses.replace(
                    config.ctr,
                    backbone=backbone,
                    user_vectors=None if path is None else str(path),
                    dense_dim=dim,
                    train=train,
                )
                folder = work.step(
                    f"e3-ctr-{backbone}-{name}-seed{seed}", lambda out, c=ctr: train_ctr(data, c, out, False)
                )
                aucs[(backbone, name, seed)] = json.loads((folder / "metrics.json").read_text())["test"]["auc"]
    seeds = range(args.seeds)
    result = {}
    for backbone in args.backbones:
        rows = {"auc_none": seed_interval([aucs[(backbone, "none", s)] for s in seeds])}
        for name in vectors:
            for control in ("none", "random"):
                if name != control:
                    differences = [aucs[(backbone, name, s)] - aucs[(backbone, control, s)] for s in seeds]
                    rows[f"{name}_minus_{control}"] = seed_interval(differences)
        result[backbone] = rows
    return result


def snapshot_reccots(work: Work, data: Path, name: str, generator: Path, iteration: int) -> Path:
    """`generator`'s RecCoT snapshots of every user at the split starts and now (summarize's table)."""
    return work.step(
        f"e3-reccots-{name}", lambda out: summarize(data, generator, work.llm, out, iteration, SPLIT_SNAPSHOTS)
    )


def ctr_reward_alignment(work: Work, config, data: Path, samples: Path, g0: Path, args) -> dict:
    """E2 with DPO4Rec's reward: one DPO round of G0 on the CTR judge's rewards of its samples, judged
    on held-out users by that judge and by one trained with another seed."""
    llm = dataclasses.replace(work.llm, reward="ctr", preference=PreferenceMode.DPO)
    table = pd.read_parquet(snapshot_reccots(work, data, "G0", g0, 0) / "reccots.parquet")
    judges = {}
    for seed in (0, 1):
        ctr = dataclasses.replace(config.judge.ctr, train=dataclasses.replace(config.judge.ctr.train, seed=seed))
        judge = dataclasses.replace(config.judge, ctr=ctr)
        judges[seed] = work.step(f"judge-G0-seed{seed}", lambda out, j=judge: train_judge(data, table, j, out))
    align_samples = work.step("samples-align", lambda out: with_train_subset(samples, out, args.align_users))
    eval_only = work.step("samples-eval-only", lambda out: with_train_subset(samples, out, 0))
    sampled = work.step("sampled", lambda out: sample(align_samples, g0, llm, out, seed=llm.generation.seed))
    scored = work.step(
        "scored-ctr", lambda out: score(align_samples, sampled, None, llm, out, judge=judges[0], dataset_dir=data)
    )
    scored_shuffled = work.step("scored-ctr-shuffled", lambda out: shuffled_preferences(scored, sampled, llm, out, 2))
    generators = {
        "G0": g0,
        "G1": adapter_in(work.step("g1-ctr", lambda out: align(scored, g0, llm, out))),
        "G1 shuffled": adapter_in(work.step("g1-ctr-shuffled", lambda out: align(scored_shuffled, g0, llm, out))),
    }
    frame = read_samples(samples, "eval")
    users = frame.user_id.to_numpy()
    texts = {
        name: read_reccots(
            work.step(f"reccots-eval-{name.replace(' ', '-')}-ctr", lambda out, g=g: greedy(eval_only, g, llm, out)),
            "eval",
            frame,
        )
        for name, g in generators.items()
    }
    rows = {}
    for seed, judge in judges.items():
        rewards = {name: judge_rewards(judge, data, frame, reccots, False) for name, reccots in texts.items()}
        suffix = "" if seed == 0 else "_second_judge"
        rows[f"judge_test_auc{suffix}"] = {"estimate": judge_auc(judge), "ci_low": None, "ci_high": None}
        rows[f"reward_G0{suffix}"] = bootstrap(mean_of(rewards["G0"]), users)
        rows[f"gain{suffix}"] = bootstrap(mean_of(rewards["G1"] - rewards["G0"]), users)
        rows[f"gain_minus_shuffled{suffix}"] = bootstrap(mean_of(rewards["G1"] - rewards["G1 shuffled"]), users)
    preferences = len(pd.read_parquet(scored / "preferences.parquet"))
    plot("E2_alignment_ctr", {k: v for k, v in rows.items() if k.startswith("gain")}, args.out, reference=0.0)
    return rows | {"preferences": {"estimate": preferences, "ci_low": None, "ci_high": None}}


def with_labels(samples: Path, folder: Path, labels: np.ndarray) -> None:
    """A copy of the selected samples whose train labels are `labels`."""
    shutil.copytree(samples, folder)
    train = pd.read_parquet(folder / "train.parquet")
    train["label"] = labels
    train.to_parquet(folder / "train.parquet")


def with_train_subset(samples: Path, folder: Path, count: int) -> None:
    """A copy of the selected samples with the first `count` train users only, who are also the
    one alignment round's."""
    shutil.copytree(samples, folder)
    train = pd.read_parquet(folder / "train.parquet").iloc[:count]
    train.to_parquet(folder / "train.parquet")
    train.assign(round=1).to_parquet(folder / "align.parquet")


def shuffled_preferences(scored: Path, sampled: Path, llm, folder: Path, seed: int) -> None:
    """The scored preferences rebuilt with each sample's N rewards permuted: which RecCoT is chosen
    becomes random, everything else (prompts, texts, counts) stays."""
    rng = np.random.default_rng(seed)
    table = pd.read_parquet(scored / "preferences.parquet")
    texts = pd.read_parquet(sampled / "samples.parquet").loc[table.index]
    prefs = [
        preference(prompt, list(reccots), list(rng.permutation(rewards)), llm.preference, list(done))
        for prompt, reccots, rewards, done in zip(
            table.prompt, texts.reccots, table.rewards, texts.finished, strict=True
        )
    ]
    folder.mkdir()
    preference_table(prefs, table.rewards, table.index).to_parquet(folder / "preferences.parquet")


def plot(name: str, rows: dict[str, dict], out: Path, reference: float | None = None) -> None:
    figure, axis = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(rows)))
    labels = list(rows)
    estimates = [rows[k]["estimate"] for k in labels]
    errors = [
        [rows[k]["estimate"] - rows[k]["ci_low"] for k in labels],
        [rows[k]["ci_high"] - rows[k]["estimate"] for k in labels],
    ]
    axis.errorbar(estimates, range(len(labels)), xerr=errors, fmt="o", capsize=3)
    axis.set_yticks(range(len(labels)), labels)
    if reference is not None:
        axis.axvline(reference, color="grey", linestyle=":")
    axis.set_title(f"{name} (95% paired bootstrap)")
    figure.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def settings(args, llm, train_labels: np.ndarray, labels: np.ndarray, users: np.ndarray) -> dict:
    return {
        "train_users": int(len(train_labels)),
        "train_liked": int(train_labels.sum()),
        "eval_users": len(set(users)),
        "eval_samples": int(len(labels)),
        "eval_liked": int(labels.sum()),
        "align_users": args.align_users,
        "teacher": llm.teacher.kind,
        "base": llm.base,
        "generation": dataclasses.asdict(llm.generation),
        "lora": dataclasses.asdict(llm.lora),
        "rectune_train": dataclasses.asdict(llm.rectune_train),
        "align_train": dataclasses.asdict(llm.align_train),
        "resamples": RESAMPLES,
        "machine": machine(),
    }


def machine() -> str:
    import torch

    from trackrec.cpus import available_cpus

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {available_cpus()} cores"


def write_results(out: Path, results: dict, settings: dict, started: float) -> dict:
    """results.json after each experiment, so a run cut short keeps what it measured; experiments this
    run did not compute keep their earlier objects."""
    path = out / "results.json"
    written = json.loads(path.read_text()) if path.exists() else {}
    wall = {"wall_s": time.perf_counter() - started}
    written |= {name: rows | {"settings": settings | wall} for name, rows in results.items()}
    path.write_text(json.dumps(written, indent=2))
    return written


def print_results(results: dict, users: np.ndarray, out: Path) -> None:
    held_out = f"{len(set(users))} held-out users, {len(users)} samples"
    table = Table(title=f"loop quality: {held_out}, 95% paired bootstrap over users ({RESAMPLES} resamples)")
    for column in ("experiment", "measure", "estimate", "95% interval"):
        table.add_column(column, justify="right" if column in ("estimate", "95% interval") else "left")
    for experiment, rows in results.items():
        for measure, value in rows.items():
            if measure not in ("settings", "auc"):
                interval = "" if value["ci_low"] is None else f"[{value['ci_low']:+.4f}, {value['ci_high']:+.4f}]"
                table.add_row(experiment, measure, f"{value['estimate']:+.4f}", interval)
    Console().print(table)
    for experiment, rows in results.items():
        settings = rows["settings"]
        print(f"{experiment}: {settings['machine']}, written {settings['wall_s']:.0f} s into its run")
    print(f"results in {out / 'results.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/local.yaml"))
    parser.add_argument("--train-users", type=int, default=600)
    parser.add_argument("--eval-users", type=int, default=400, help="held-out users, at most (those not drawn)")
    parser.add_argument("--eval-per-user", type=int, default=5, help="latest test samples per held-out user")
    parser.add_argument("--align-users", type=int, default=300)
    parser.add_argument(
        "--only", choices=["E0", "E2ctr", "E3"], help="E0: probe V's settings; E2ctr, E3: from --adapters"
    )
    parser.add_argument("--adapters", nargs="+", type=Path, help="G0 G1 (--only E3) or G0 (--only E2ctr)")
    parser.add_argument("--backbones", nargs="+", default=["din", "deepfm"], help="E3's CTR models")
    parser.add_argument("--seeds", type=int, default=5, help="E3's CTR seeds")
    parser.add_argument("--history-tokens", type=int, help="override llm.generation.history_tokens")
    parser.add_argument("--max-new-tokens", type=int, help="override llm.generation.max_new_tokens")
    parser.add_argument("--batch-size", type=int, help="override llm.generation.batch_size (prompts per batch)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/loop_quality"))
    args = parser.parse_args()
    wanted = {"E3": 2, "E2ctr": 1}.get(args.only, 0)
    if len(args.adapters or []) != wanted:
        parser.error("--adapters: G0 G1 with --only E3, G0 with --only E2ctr, none otherwise")
    started = time.perf_counter()
    config = load_config(args.config, RunConfig)
    llm = config.llm
    if llm.teacher.kind == "hf":  # the base teaching itself transfers nothing: the offline stand-in
        llm = dataclasses.replace(llm, teacher=dataclasses.replace(llm.teacher, kind="profile"))
    subset = dataclasses.replace(
        llm.subset, train_samples=args.train_users, eval_users=args.eval_users, eval_per_user=args.eval_per_user
    )
    overrides = {
        "history_tokens": args.history_tokens,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
    }
    generation = dataclasses.replace(llm.generation, **{k: v for k, v in overrides.items() if v is not None})
    llm = dataclasses.replace(llm, subset=subset, generation=generation)
    work = Work(args.out / "work", llm)
    data = work.step("data", lambda out: prepare_data(config.data, out))
    samples = work.step("samples", lambda out: select_samples(data, llm.subset, out))
    eval_frame = read_samples(samples, "eval")
    train_labels = read_samples(samples, "train").label.to_numpy()
    labels = eval_frame.label.to_numpy()
    users = eval_frame.user_id.to_numpy()
    run_settings = settings(args, llm, train_labels, labels, users)
    if args.only == "E3":
        g0, g1 = args.adapters
        ctr_experiment(work, config, data, samples, {"G0": g0, "G1": g1}, args, run_settings, started)
        return
    if args.only == "E2ctr":
        e2_ctr = ctr_reward_alignment(work, config, data, samples, args.adapters[0], args)
        print_results(write_results(args.out, {"E2_alignment_ctr": e2_ctr}, run_settings, started), users, args.out)
        return
    tokenizer = load_tokenizer(llm.base)
    builder = prompt_builder(llm, tokenizer, "bench")

    teacher = work.reccots(
        "reccots-teacher", samples, lambda split, frame: teacher_reccots(llm, builder, frame, samples)
    )
    empty = work.reccots("reccots-empty", samples, lambda split, frame: [""] * len(frame))
    answer = work.reccots("reccots-answer", samples, lambda split, frame: [ANSWER[int(y)] for y in frame.label])

    # E0: is V a recommender at all, beyond the like-rate prior?
    shuffled_samples = work.step(
        "samples-shuffled", lambda out: with_labels(samples, out, np.random.default_rng(1).permutation(train_labels))
    )
    v_teacher = work.validator("v-teacher", samples, teacher)
    scores = {
        "V, teacher RecCoT": work.p_yes(v_teacher, samples, teacher),
        "control: summary states the answer": work.p_yes(work.validator("v-answer", samples, answer), samples, answer),
        "control: shuffled train labels": work.p_yes(
            work.validator("v-shuffled", shuffled_samples, teacher), samples, teacher
        ),
        "baseline: like-rate prior": like_rate(eval_frame.history_labels),
    }
    e0 = {name: bootstrap(auc_of(labels, s), users) for name, s in scores.items()}
    e0["auc_minus_prior"] = bootstrap(
        auc_difference(labels, scores["V, teacher RecCoT"], scores["baseline: like-rate prior"]), users
    )
    plot("E0_validator", e0, args.out, reference=0.5)
    results = {"E0_validator": {"auc": e0["V, teacher RecCoT"], **e0}}
    written = write_results(args.out, results, run_settings, started)
    if args.only == "E0":
        print_results(written, users, args.out)
        return
    corpus = work.step("teacher-corpus", lambda out: teach(samples, llm, out))
    g0 = adapter_in(work.step("distill", lambda out: distill(corpus, llm, out)))
    g0_reccots = work.step("reccots-g0", lambda out: greedy(samples, g0, llm, out))

    # E2: one S-DPO round of G0 under the fixed V (trained on teacher RecCoTs, which G0 imitates)
    align_samples = work.step("samples-align", lambda out: with_train_subset(samples, out, args.align_users))
    eval_only = work.step("samples-eval-only", lambda out: with_train_subset(samples, out, 0))
    sampled = work.step("sampled", lambda out: sample(align_samples, g0, llm, out, seed=llm.generation.seed))
    scored = work.step("scored", lambda out: score(align_samples, sampled, v_teacher, llm, out))
    scored_shuffled = work.step("scored-shuffled", lambda out: shuffled_preferences(scored, sampled, llm, out, 2))
    g1 = adapter_in(work.step("g1", lambda out: align(scored, g0, llm, out)))
    g1_shuffled = adapter_in(work.step("g1-shuffled", lambda out: align(scored_shuffled, g0, llm, out)))
    v_second = work.validator("v-teacher-seed1", samples, teacher, seed=1)
    e2 = {}
    for judge_name, judge in (("V", v_teacher), ("V seed 1", v_second)):
        rewards = {}
        for name, generator in (("G0", g0), ("G1", g1), ("G1 shuffled", g1_shuffled)):
            greedy_dir = (
                g0_reccots
                if name == "G0"
                else work.step(
                    f"reccots-{name.replace(' ', '-')}", lambda out, g=generator: greedy(eval_only, g, llm, out)
                )
            )
            p_yes = work.p_yes(judge, samples, greedy_dir)
            rewards[name] = reward(p_yes, 1 - p_yes, labels)
        suffix = "" if judge_name == "V" else "_second_v"
        e2[f"reward_G0{suffix}"] = bootstrap(mean_of(rewards["G0"]), users)
        e2[f"gain{suffix}"] = bootstrap(mean_of(rewards["G1"] - rewards["G0"]), users)
        e2[f"gain_shuffled{suffix}"] = bootstrap(mean_of(rewards["G1 shuffled"] - rewards["G0"]), users)
        e2[f"gain_minus_shuffled{suffix}"] = bootstrap(mean_of(rewards["G1"] - rewards["G1 shuffled"]), users)
    plot("E2_alignment", {k: v for k, v in e2.items() if not k.startswith("reward")}, args.out, reference=0.0)

    results["E2_alignment"] = e2
    results["E2_alignment_ctr"] = ctr_reward_alignment(work, config, data, samples, g0, args)
    write_results(args.out, results, run_settings, started)

    # E1: does a summary carry signal? V trained and judged with each kind of summary
    channel = {
        "teacher": scores["V, teacher RecCoT"],
        "G0": work.p_yes(work.validator("v-g0", samples, g0_reccots), samples, g0_reccots),
        "empty": work.p_yes(work.validator("v-empty", samples, empty), samples, empty),
    }
    e1 = {f"auc_{k}": bootstrap(auc_of(labels, s), users) for k, s in channel.items()}
    e1["teacher_minus_empty"] = bootstrap(auc_difference(labels, channel["teacher"], channel["empty"]), users)
    e1["g0_minus_empty"] = bootstrap(auc_difference(labels, channel["G0"], channel["empty"]), users)
    plot("E1_channel", e1, args.out, reference=0.0)
    results["E1_channel"] = e1
    write_results(args.out, results, run_settings, started)

    ctr_experiment(work, config, data, samples, {"G0": g0, "G1": g1}, args, run_settings, started)


def ctr_experiment(work: Work, config, data: Path, samples: Path, generators: dict, args, run_settings, started):
    """E3: do the RecCoT vectors lift the CTR models, beyond random vectors of the same size?"""
    e3 = ctr_lift(work, config, data, samples, generators, args)
    for backbone, rows in e3.items():
        plot(f"E3_ctr_{backbone}", {k: v for k, v in rows.items() if k != "auc_none"}, args.out, reference=0.0)
    rows = {f"{b}.{k}": v for b, rows in e3.items() for k, v in rows.items()}
    e3_settings = run_settings | {"backbones": args.backbones, "seeds": args.seeds}
    if args.adapters:
        e3_settings["adapters"] = [str(path) for path in args.adapters]
    users = read_samples(samples, "eval").user_id.to_numpy()
    print_results(write_results(args.out, {"E3_ctr": rows}, e3_settings, started), users, args.out)


if __name__ == "__main__":
    main()
