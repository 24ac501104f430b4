"""Benchmark (not a test): what a point-in-time RecCoT vector can carry to a CTR model, on CoLLM ML-1M.

    python bench/reccot_lift.py [--config configs/local.yaml] [--seeds 5] [--backbones din deepfm]
        [--history-lens 3 10] [--every-days 30] [--run runs/local] [--out runs/bench/reccot_lift]

Every user gets snapshots (trackrec/data/snapshots.py: every K days, the split starts, now; only
where the history changed); each sample reads its user's newest snapshot from before it, the join
train_ctr uses. Per backbone, history_len and with or without the user-id field, trained with each
vector, the same seeds for all:
  none           ids and the history window only (the baseline);
  random         a random unit vector per snapshot (the connector's parameters without information);
  permuted       the long-history teacher vectors shuffled across snapshots (the control: the same
                 vectors, no longer the user's);
  teacher-long   the offline profile teacher's summary of the snapshot's history (up to max_history
                 events: what a short-window reader lacks), encoded;
  teacher-short  the same teacher on only the reader's window (the last history_len items);
  numeric        the teacher's own numbers (like-rate, count, per-genre like-rates and shares) as
                 dense features: what the text channel could carry at best;
  G0 / G(T)      with --run, the RecCoTs of that run's G0 and G(T) for its drawn users (costly on a
                 CPU: ~0.2 TFLOP per 50-item summary; bench/gpu.py's machine does it in seconds).
Reports test AUC per cell (mean over seeds, and its spread), and the paired difference against
none and against permuted, two ways: across seeds (the mean per-seed difference, 95% t-interval)
and over test users (the seed-averaged predictions' AUC difference, 95% bootstrap). A re-run reuses
every trained model and its test predictions, and only summarises.
Writes results.json and lift.png to --out. Run it alone: it is CPU-bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from tqdm import tqdm  # noqa: E402

from trackrec.config import load_config  # noqa: E402
from trackrec.ctr.saved import METRICS, load_trained, trained_metrics  # noqa: E402
from trackrec.ctr.stream import SplitStream  # noqa: E402
from trackrec.ctr.train import predict  # noqa: E402
from trackrec.data.dataset import META_FILE, Dataset  # noqa: E402
from trackrec.data.snapshots import SnapshotConfig  # noqa: E402
from trackrec.features.encoder import EncoderConfig  # noqa: E402
from trackrec.features.vectors import read_vectors  # noqa: E402
from trackrec.intervals import auc_difference, bootstrap  # noqa: E402
from trackrec.llm.profile_teacher import ProfileTeacher  # noqa: E402
from trackrec.llm.records import history_items  # noqa: E402
from trackrec.run_config import RunConfig  # noqa: E402
from trackrec.stages.encode import encode  # noqa: E402
from trackrec.stages.outputs import Embeddings, RecCoTs  # noqa: E402
from trackrec.stages.prepare_data import prepare_data  # noqa: E402
from trackrec.stages.summarize import dataset_snapshots, summarize  # noqa: E402
from trackrec.stages.train_ctr import train_ctr  # noqa: E402

CONTROLS = ("none", "permuted")  # what every vector is compared with
PREDICTIONS = "test_predictions.npy"  # beside each trained model


def matmul_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    return 2 * 2048**3 * 10 / (time.perf_counter() - start) / 1e9


def write_table(keys: pd.DataFrame, vectors: np.ndarray, texts: list[str], path: Path) -> Path:
    """An embeddings table (encode's columns) of snapshot `keys` and their vectors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = keys[["user_id", "as_of"]].reset_index(drop=True)
    frame = frame.assign(reccot=texts, iteration=0, embedding=list(vectors.astype(np.float32)), encoder="bench")
    frame.to_parquet(path)
    return path


def encoded(keys: pd.DataFrame, texts: list[str], encoder: EncoderConfig, folder: Path) -> Path:
    """The texts encoded as encode does, once (reused on a re-run)."""
    reccots, embeddings = RecCoTs(folder / "reccots"), Embeddings(folder / "embeddings")
    if not embeddings.table.exists():
        reccots.folder.mkdir(parents=True, exist_ok=True)
        frame = keys[["user_id", "as_of"]].assign(reccot=texts, iteration=0)
        frame.to_parquet(reccots.table)
        encode(reccots.folder, encoder, embeddings.folder)
    return embeddings.table


def numeric_profile(rows: pd.DataFrame, items: pd.DataFrame) -> np.ndarray:
    """Per snapshot: like-rate, count / 50, and per genre the share of the history and its like-rate."""
    genres = sorted({g for gs in items.genres for g in gs})
    column = {g: i for i, g in enumerate(genres)}
    of_item = items.set_index("item_id").genres.to_dict()
    out = np.zeros((len(rows), 2 + 2 * len(genres)), np.float32)
    for r, (ids, labels) in enumerate(zip(rows.history_item_ids, rows.history_labels, strict=True)):
        labels = np.asarray(labels, np.float32)
        out[r, 0], out[r, 1] = labels.mean(), len(labels) / 50
        seen, liked = np.zeros(len(genres)), np.zeros(len(genres))
        for item, label in zip(ids, labels, strict=True):
            for genre in of_item.get(item, []):
                seen[column[genre]] += 1
                liked[column[genre]] += label
        out[r, 2 : 2 + len(genres)] = seen / len(labels)
        out[r, 2 + len(genres) :] = np.where(seen > 0, liked / np.maximum(seen, 1), 0.5)
    return out


def vector_tables(args, run: RunConfig, data: Path) -> dict[str, Path | None]:
    """name -> embeddings table of every user's snapshots (None: no vector)."""
    dataset = Dataset.open(data)
    snapshots = dataset_snapshots(dataset, SnapshotConfig(every_days=args.every_days))
    rows = dataset.with_histories(snapshots)
    teacher, encoder = ProfileTeacher(dataset.items), run.features.encoder if run.features else EncoderConfig()
    histories = [(history_items(row), list(row.history_item_ids)) for row in rows.itertuples()]
    print(f"{len(snapshots)} snapshots of {snapshots.user_id.nunique()} users (every {args.every_days} days)")
    tables: dict[str, Path | None] = {"none": None}
    long = teacher.complete_histories(histories)
    tables["teacher-long"] = encoded(snapshots, long, encoder, args.out / "teacher-long")
    for length in args.history_lens:
        short = teacher.complete_histories([(items[-length:], ids[-length:]) for items, ids in histories])
        tables[f"teacher-short{length}"] = encoded(snapshots, short, encoder, args.out / f"teacher-short{length}")
    base = pd.read_parquet(tables["teacher-long"])
    rng = np.random.default_rng(0)
    random = rng.standard_normal((len(base), len(base.embedding.iloc[0]))).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    tables["random"] = write_table(base, random, [""] * len(base), args.out / "random.parquet")
    permuted = np.stack(base.embedding)[rng.permutation(len(base))]
    tables["permuted"] = write_table(base, permuted, [""] * len(base), args.out / "permuted.parquet")
    numbers = numeric_profile(rows, dataset.items)
    tables["numeric"] = write_table(snapshots, numbers, [""] * len(snapshots), args.out / "numeric.parquet")
    if args.run:
        from pipelines.local import latest_run

        paths = latest_run(args.run)
        for name, key in (("G0", "distilled"), (f"G({run.llm.iterations})", "generator")):
            reccots, embeddings = RecCoTs(args.out / name / "reccots"), Embeddings(args.out / name / "embeddings")
            if not reccots.folder.exists():
                summarize(data, paths[key], run.llm, reccots.folder, 0, run.features.snapshots, 48)
            if not embeddings.table.exists():
                encode(reccots.folder, encoder, embeddings.folder)
            tables[name] = embeddings.table
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/local.yaml"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--backbones", nargs="+", default=["din", "deepfm"])
    parser.add_argument("--history-lens", nargs="+", type=int, default=[3, 10])
    parser.add_argument("--user-id", nargs="+", choices=["with", "without"], default=["with", "without"])
    parser.add_argument("--every-days", type=int, default=30)
    parser.add_argument("--run", type=Path, default=None, help="a finished trackrec run: adds its G0 and G(T)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/reccot_lift"))
    args = parser.parse_args()
    gflops, started = matmul_gflops(), time.perf_counter()
    run = load_config(args.config, RunConfig)
    data = args.out / "data"
    if not (data / META_FILE).exists():
        prepare_data(run.data, data)
    tables = vector_tables(args, run, data)
    dataset = Dataset.open(data)
    test = dataset.samples("test", columns=["user_id", "label"])
    cells = [(b, L, u) for b in args.backbones for L in args.history_lens for u in args.user_id]
    results, jobs = [], [(c, n, s) for c in cells for n in tables for s in range(args.seeds)]
    jobs = [(c, n, s) for c, n, s in jobs if not n.startswith("teacher-short") or n == f"teacher-short{c[1]}"]
    predictions: dict = {}
    for (backbone, length, user_id), name, seed in tqdm(jobs, desc="CTR models", unit="model"):
        path = tables[name]
        dim = 0 if path is None else len(pd.read_parquet(path, columns=["embedding"]).embedding.iloc[0])
        ctr = dataclasses.replace(
            run.ctr,
            backbone=backbone,
            history_len=length,
            user_vectors=None if path is None else str(path),
            dense_dim=dim,
            model=dataclasses.replace(run.ctr.model, user_id=user_id == "with"),
            train=dataclasses.replace(run.ctr.train, seed=run.ctr.train.seed + seed),
        )
        folder = (
            args.out / "ctr" / f"{backbone}-L{length}-{user_id}" / name.replace("(", "").replace(")", "") / str(seed)
        )
        if not (folder / PREDICTIONS).exists():  # trained and predicted once: a re-run only summarises
            if not (folder / METRICS).exists():
                train_ctr(data, ctr, folder, progress=False)
            model, _ = load_trained(folder, dataset)
            vectors = None if path is None else read_vectors(path, dim, dataset.n_users)
            np.save(folder / PREDICTIONS, predict(model, SplitStream(dataset, "test", length, 4096, vectors))[0])
        result, probs = trained_metrics(folder), np.load(folder / PREDICTIONS)
        short = "teacher-short" if name.startswith("teacher-short") else name
        predictions.setdefault(((backbone, length, user_id), short), []).append(probs)
        results.append({"cell": [backbone, length, user_id], "vector": short, "seed": seed, **result["test"]})
    rows = summarise(results, predictions, test)
    minutes = (time.perf_counter() - started) / 60
    print_table(rows, gflops, minutes, args.seeds)
    draw(rows, args.out / "lift.png")
    (args.out / "results.json").write_text(
        json.dumps({"gflops": gflops, "minutes": minutes, "runs": results, "summary": rows}, indent=2)
    )
    print(f"wrote {args.out / 'results.json'} and lift.png")


def summarise(results: list[dict], predictions: dict, test: pd.DataFrame) -> list[dict]:
    """Per cell and vector: AUC over seeds, and paired bootstrap differences of the seed-averaged
    predictions against each control."""
    frame = pd.DataFrame(results)
    frame["cell"] = frame.cell.map(tuple)
    rows = []
    labels, users = test.label.to_numpy(), test.user_id.to_numpy()
    for (cell, vector), group in frame.groupby(["cell", "vector"], sort=False):
        mean = np.mean(predictions[(cell, vector)], axis=0)
        row = {"cell": list(cell), "vector": vector, "auc": group.auc.mean(), "auc_sd": group.auc.std(ddof=1)}
        row["seeds"] = len(group)
        for control in CONTROLS:
            if (cell, control) in predictions and control != vector:
                other = np.mean(predictions[(cell, control)], axis=0)
                row[f"vs_{control}"] = bootstrap(auc_difference(labels, mean, other), users)
                theirs = frame[(frame.cell == cell) & (frame.vector == control)].set_index("seed").auc
                row[f"vs_{control}_seeds"] = seed_interval((group.set_index("seed").auc - theirs).dropna())
        rows.append(row)
    return rows


def seed_interval(differences: pd.Series) -> dict:
    """The mean paired difference across seeds and its 95% t-interval."""
    from scipy import stats

    values = differences.to_numpy(np.float64)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return {"estimate": values.mean(), "ci_low": values.mean() - half, "ci_high": values.mean() + half}


def print_table(rows: list[dict], gflops: float, minutes: float, seeds: int) -> None:
    table = Table(
        title=f"RecCoT lift, CoLLM ML-1M test split, {seeds} seeds; {minutes:.0f} min at {gflops:.0f} GFLOP/s (matmul)"
    )
    columns = ["backbone", "L", "user id", "vector", "AUC (mean ± sd)"]
    columns += [f"vs {control} ({how})" for control in CONTROLS for how in ("seeds", "users")]
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        diffs = []
        for key in (f"vs_{control}{how}" for control in CONTROLS for how in ("_seeds", "")):
            d = row.get(key)
            diffs.append("" if d is None else f"{d['estimate']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]")
        backbone, length, user_id = row["cell"]
        table.add_row(backbone, str(length), user_id, row["vector"], f"{row['auc']:.4f} ± {row['auc_sd']:.4f}", *diffs)
    Console(width=230).print(table)


def draw(rows: list[dict], path: Path) -> None:
    cells = list(dict.fromkeys(tuple(r["cell"]) for r in rows))
    vectors = list(dict.fromkeys(r["vector"] for r in rows if r["vector"] != "none"))
    columns = min(4, len(cells))
    rows_of = -(-len(cells) // columns)
    figure, axes = plt.subplots(rows_of, columns, figsize=(3.4 * columns, 3.8 * rows_of), sharey=True, squeeze=False)
    for axis in axes.flat[len(cells) :]:
        axis.set_visible(False)
    for axis, cell in zip(axes.flat, cells, strict=False):
        for x, vector in enumerate(vectors):
            row = next((r for r in rows if tuple(r["cell"]) == cell and r["vector"] == vector), None)
            if row is None or "vs_none" not in row:
                continue
            d = row["vs_none"]
            axis.errorbar(x, d["estimate"], [[d["estimate"] - d["ci_low"]], [d["ci_high"] - d["estimate"]]], fmt="o")
        axis.axhline(0, color="grey", lw=0.8)
        axis.set_xticks(range(len(vectors)), vectors, rotation=60, ha="right")
        axis.set_title(f"{cell[0]} L={cell[1]} {cell[2]} id", fontsize=9)
    for row in axes:
        row[0].set_ylabel("test AUC - none's (95% CI over users)")
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
