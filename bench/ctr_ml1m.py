"""Benchmark (not a test): every CTR backbone on CoLLM ML-1M, 3 seeds, against the paper's Base AUC.

    python bench/ctr_ml1m.py [--seeds 1 2 3] [--backbones din deepfm ...] [--history full|liked]

Prints one table (median over seeds) and writes results.json and a bar chart (auc.png) to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from trackrec.ctr.config import (  # noqa: E402
    BACKBONES,  # noqa: E402
    CTRConfig,
    TrainConfig,
)
from trackrec.data.config import (
    DataConfig,  # noqa: E402
    HistoryMode,  # noqa: E402
)
from trackrec.data.dataset import META_FILE  # noqa: E402
from trackrec.stages.prepare_data import prepare_data  # noqa: E402
from trackrec.stages.train_ctr import train_ctr  # noqa: E402

# TrackRec paper, Table 2, MovieLens "Base" AUC (DIEN's MovieLens row is cut from our copy).
PAPER_BASE_AUC = {
    "din": 0.7621,
    "deepfm": 0.7556,
    "dcn": 0.7563,
    "autoint": 0.7553,
    "fignn": 0.7575,
    "fibinet": 0.7560,
    "dien": None,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--history", choices=[m.value for m in HistoryMode], default="full")
    parser.add_argument("--out", type=Path, default=None, help="default runs/bench/ctr_ml1m-<history>")
    args = parser.parse_args()
    args.out = args.out or Path(f"runs/bench/ctr_ml1m-{args.history}")

    dataset_dir = args.out / "data"
    if not (dataset_dir / META_FILE).exists():
        prepare_data(DataConfig(history=HistoryMode(args.history)), dataset_dir)
    results = {}
    for backbone in tqdm(args.backbones, desc="backbones"):
        runs = [
            train_ctr(
                dataset_dir,
                CTRConfig(backbone=backbone, train=TrainConfig(seed=seed)),
                args.out / backbone / f"seed{seed}",
                progress=False,
            )
            for seed in args.seeds
        ]
        results[backbone] = {
            **{m: statistics.median(r["test"][m] for r in runs) for m in ("auc", "acc", "logloss")},
            "train_seconds": statistics.median(r["train_seconds"] for r in runs),
            "runs": [r["test"] for r in runs],
        }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results, len(args.seeds), args.history)
    draw(results, args.out / "auc.png")


def print_table(results: dict, n_seeds: int, history: str) -> None:
    title = f"CoLLM ML-1M test, {history} history, median of {n_seeds} seeds (early stopping on valid)"
    table = Table(title=title)
    for column in ("backbone", "AUC", "ACC", "LogLoss", "paper Base AUC", "AUC - Base", "train s"):
        table.add_column(column, justify="right")
    for backbone, r in results.items():
        base = PAPER_BASE_AUC[backbone]
        table.add_row(
            backbone,
            f"{r['auc']:.4f}",
            f"{r['acc']:.4f}",
            f"{r['logloss']:.4f}",
            "n/a" if base is None else f"{base:.4f}",
            "n/a" if base is None else f"{r['auc'] - base:+.4f}",
            f"{r['train_seconds']:.1f}",
        )
    Console(width=120).print(table)


def draw(results: dict, path: Path) -> None:
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, [results[n]["auc"] for n in names], color="tab:blue", label="trackrec (median)")
    bases = [(i, PAPER_BASE_AUC[n]) for i, n in enumerate(names) if PAPER_BASE_AUC[n]]
    ax.scatter([i for i, _ in bases], [b for _, b in bases], color="tab:red", zorder=3, label="paper Base AUC")
    ax.set_ylim(0.70, 0.80)
    ax.set_ylabel("test AUC")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"chart: {path}")


if __name__ == "__main__":
    main()
