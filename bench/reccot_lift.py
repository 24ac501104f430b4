"""Benchmark (not a test): what the RecCoT vector is worth to the CTR models, on CoLLM ML-1M.

    python bench/reccot_lift.py [--run runs/local] [--config configs/local.yaml] [--backbones din] [--users N]

Reads a finished `trackrec run` (its latest.json: the prepared data, G0 and G(T)) and the config it
ran with. For every backbone, with the same seed in the same run:
  none    - ids and history only;
  random  - a random unit vector of the encoder's size per user (control: the connector's extra
            parameters without information);
  G0      - the RecCoT of the distilled G0, encoded;
  G(T)    - the RecCoT after T iterations, encoded.
RecCoTs are written once per G from each user's history at the training cut-off and reused on a
re-run. Prints test AUC / ACC / LogLoss and the differences from `none`; writes results.json and
lift.png to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from pipelines.local import latest_run  # noqa: E402
from trackrec.config import load_config  # noqa: E402
from trackrec.features.encoder import EncoderConfig  # noqa: E402
from trackrec.features.vectors import random_unit_vectors  # noqa: E402
from trackrec.run_config import RunConfig  # noqa: E402
from trackrec.stages.encode import encode  # noqa: E402
from trackrec.stages.llm_common import adapter_in  # noqa: E402
from trackrec.stages.summarize import summarize  # noqa: E402
from trackrec.stages.train_ctr import train_ctr  # noqa: E402


def encoded(run: RunConfig, data: Path, adapter: Path, iteration: int, users: int | None, folder: Path) -> Path:
    """embeddings.parquet of this G's RecCoTs, computed once."""
    if not (folder / "reccots").exists():
        summarize(data, adapter, run.llm, folder / "reccots", iteration, users)
    if not (folder / "embeddings").exists():
        encode(folder / "reccots", run.features.encoder if run.features else EncoderConfig(), folder / "embeddings")
    return folder / "embeddings" / "embeddings.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/local"))
    parser.add_argument("--config", type=Path, default=Path("configs/local.yaml"), help="the config it ran with")
    parser.add_argument("--backbones", nargs="+", default=["din"])
    parser.add_argument("--users", type=int, default=None, help="users summarised per G; default every user")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/reccot_lift"))
    args = parser.parse_args()
    run, paths = load_config(args.config, RunConfig), latest_run(args.run)
    t, data = run.llm.iterations, paths["dataset"]
    vectors = {
        "none": None,
        "G0": encoded(run, data, adapter_in(paths["distilled"]), 0, args.users, args.out / "g0"),
        f"G({t})": encoded(run, data, adapter_in(paths["generator"]), t, args.users, args.out / f"g{t}"),
    }
    vectors["random"] = random_unit_vectors(vectors["G0"], args.out / "random" / "embeddings.parquet", seed=0)
    results = {}
    for backbone in args.backbones:
        for name, path in vectors.items():
            dim = 0 if path is None else len(pd.read_parquet(path).embedding.iloc[0])
            ctr = dataclasses.replace(
                run.ctr, backbone=backbone, user_vectors=None if path is None else str(path), dense_dim=dim
            )
            folder = args.out / "ctr" / backbone / name.replace("(", "").replace(")", "")
            results[(backbone, name)] = train_ctr(data, ctr, folder, progress=False)["test"]

    table = Table(title=f"RecCoT lift on CoLLM ML-1M (test split), seed {run.ctr.train.seed}")
    for column in ("backbone", "vector", "AUC", "ACC", "LogLoss", "dAUC", "dACC", "dLogLoss"):
        table.add_column(column, justify="right")
    for (backbone, name), metrics in results.items():
        base = results[(backbone, "none")]
        table.add_row(
            backbone,
            name,
            *(f"{metrics[k]:.4f}" for k in ("auc", "acc", "logloss")),
            *(f"{metrics[k] - base[k]:+.4f}" for k in ("auc", "acc", "logloss")),
        )
    Console().print(table)
    figure, axis = plt.subplots(figsize=(8, 4))
    names, width = list(vectors), 0.8 / len(args.backbones)
    for offset, backbone in enumerate(args.backbones):
        aucs = [results[(backbone, n)]["auc"] for n in names]
        axis.bar(np.arange(len(names)) - 0.4 + (offset + 0.5) * width, aucs, width, label=backbone)
    axis.set_xticks(np.arange(len(names)), names)
    axis.set(ylabel="test AUC", title="CTR test AUC by user vector")
    axis.set_ylim(min(r["auc"] for r in results.values()) - 0.01, max(r["auc"] for r in results.values()) + 0.01)
    axis.legend(loc="upper left", bbox_to_anchor=(1, 1))
    figure.savefig(args.out / "lift.png", dpi=120, bbox_inches="tight")
    rows = [{"backbone": b, "vector": n, **m} for (b, n), m in results.items()]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out / 'results.json'} and lift.png")


if __name__ == "__main__":
    main()
