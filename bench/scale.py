"""Benchmark (not a test): the data path at 1M, 3M and 10M events, stage by stage.

    python bench/scale.py [--sizes 1000000 3000000 10000000] [--out runs/bench/scale]

A synthetic behaviour log with MovieLens-like statistics (`write_log`) goes, as a folder of parquet
parts, through prepare_data -> select_samples ->
summarize's data side (every user's cut-off history as rows, a stand-in RecCoT from its titles) ->
encode (a tiny random BERT: the encoder's cost is the model's, not the data path's) -> publish
(Feast, Debian's redis-server on 127.0.0.1) -> train_ctr (DIN, one epoch, the RecCoT vectors as its
dense input, sparse id tables at every size). Each stage runs in a fresh process: its wall seconds
(imports excluded) and peak RSS.
Prints one table, fits time ~ events^k per stage, draws scale.png and writes results.json.
`--fan-out 2 4 8` adds prepare_data fanned out over that many user shards at each size (plan, each
shard, join: each its own process, as each is its own pod on a cluster): the memory one pod needs.
Run it alone: the machine's other work shows up in every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from servers import redis_server  # bench/, the script's own folder

STAGES = ("prepare_data", "select_samples", "summarize_data", "encode", "publish", "train_ctr")
FAN_OUT = ("plan_prepare", "prepare_shard", "join_prepared")  # prepare_data over user shards
FIXED_USERS, FIXED_ITEMS = 100_000, 10_000  # the second series: only the samples grow
DIM = 32  # the tiny encoder's width
START, END = 1_577_836_800, 1_672_531_200  # 2020-01-01 .. 2023-01-01 UTC
VALID_START, TEST_START = "2022-05-27", "2022-09-14"  # 80% and 90% of the log's span


def write_log(
    folder: Path, events: int, users: int | None = None, items: int | None = None, parts: int = 8, seed: int = 0
) -> None:
    """`events` events of `users` users (default events/10; lognormal activity) on `items` items
    (default events/100; Zipf-like popularity), ratings drawn with MovieLens-1M's frequencies,
    label = rating >= 4, uniform time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_users, n_items = users or events // 10, items or max(events // 100, 100)
    activity = rng.lognormal(0.0, 1.0, n_users)
    users = rng.choice(n_users, size=events, p=activity / activity.sum()) + 1
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=events, p=popularity / popularity.sum()) + 1
    ratings = rng.choice(5, size=events, p=[0.06, 0.11, 0.26, 0.35, 0.22]) + 1
    stamps = rng.integers(START, END, size=events)
    titles = pa.array([f"Item {i} ({1950 + i % 70})" for i in range(n_items + 1)])
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for part, rows in enumerate(np.array_split(np.arange(events), parts)):
        table = pa.table(
            {
                "user_id": users[rows],
                "item_id": items[rows],
                "timestamp": stamps[rows],
                "label": (ratings[rows] >= 4).astype(np.int8),
                "rating": ratings[rows].astype(np.float32),
                "title": pa.DictionaryArray.from_arrays(pa.array(items[rows].astype(np.int32)), titles),
            }
        )
        pq.write_table(table, tmp / f"part-{part:05d}.parquet")
    (tmp / "_SUCCESS").touch()  # as Spark leaves it: the reader must skip it
    tmp.rename(folder)


def tiny_encoder(folder: Path) -> Path:
    """A one-layer, 32-wide BERT with MiniLM's tokenizer, saved as a sentence-transformers folder."""
    if (folder / "modules.json").exists():
        return folder
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from trackrec.features.encoder import MINILM, resolve_encoder

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(MINILM))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=DIM, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    bert = folder.with_name(folder.name + "-bert")
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    word = models.Transformer(str(bert), max_seq_length=64)
    SentenceTransformer(modules=[word, models.Pooling(DIM)], device="cpu").save(str(folder))
    return folder


def stage_call(stage: str, work: Path, redis: str, shards: int = 1, index: int = 0):
    """One stage on `work`'s files, as a call; imports only what that stage needs (its memory is
    its own, not another stage's libraries). The FAN_OUT stages: `shards` planned, shard `index`."""
    if stage == "prepare_data" or stage in FAN_OUT:
        from trackrec.data.config import DataConfig
        from trackrec.stages import prepare_data as data

        log = str(work.parent / "log")
        config = DataConfig(source="behaviour-log", path=log, valid_start=VALID_START, test_start=TEST_START)
        parts = [work / f"part-{i}" for i in range(shards)]
        return {
            "prepare_data": lambda: data.prepare_data(config, work / "dataset", version="bench"),
            "plan_prepare": lambda: data.plan_prepare(config, work / "plan", shards),
            "prepare_shard": lambda: data.prepare_shard(work / "plan", config, parts[index], index),
            "join_prepared": lambda: data.join_prepared(work / "plan", parts, config, work / "dataset", "bench"),
        }[stage]
    if stage == "select_samples":
        from trackrec.llm.config import SubsetConfig
        from trackrec.stages.select_samples import select_samples

        subset = SubsetConfig(train_samples=1000, eval_users=500, eval_per_user=2, distill_fraction=0.01)
        return lambda: select_samples(work / "dataset", subset, work / "samples", rounds=3)
    if stage == "summarize_data":
        return lambda: stand_in_reccots(work)
    if stage == "encode":
        from trackrec.features.encoder import EncoderConfig
        from trackrec.stages.encode import encode

        config = EncoderConfig(model=str(work.parent.parent / "tiny-encoder"), batch_size=512)
        return lambda: encode(work / "reccots", config, work / "embeddings", progress=False)
    if stage == "publish":
        from trackrec.features.config import FeaturesConfig
        from trackrec.features.store import StoreConfig
        from trackrec.stages.publish import publish

        store = StoreConfig(repo=str(work / "feast"), online="redis", redis=redis, dim=DIM)
        return lambda: publish(work / "embeddings", FeaturesConfig(store=store), work / "published")
    from trackrec.ctr.config import CTRConfig, TrainConfig
    from trackrec.stages.outputs import Embeddings
    from trackrec.stages.train_ctr import train_ctr

    train = TrainConfig(max_epochs=1, batch_size=1024, sparse_ids="on")  # what auto picks from 200k id rows
    vectors = Embeddings(work / "embeddings").table
    config = CTRConfig(backbone="din", user_vectors=str(vectors), dense_dim=DIM, train=train)
    if not vectors.exists():  # the fixed-users series: ids and histories only
        config = CTRConfig(backbone="din", train=train)
    return lambda: train_ctr(work / "dataset", config, work / "ctr", progress=False)


def stand_in_reccots(work: Path) -> None:
    """Summarize's data side: every user's cut-off sample with its history as rows (what the prompts
    are built from), and a stand-in RecCoT (its last titles) for the encoder to read."""
    import pandas as pd

    from trackrec.data.dataset import Dataset
    from trackrec.data.snapshots import SnapshotConfig
    from trackrec.stages.outputs import RecCoTs
    from trackrec.stages.summarize import dataset_snapshots

    dataset = Dataset.open(work / "dataset")
    rows = dataset.with_histories(dataset_snapshots(dataset, SnapshotConfig(every_days=None)))
    reccots = ["; ".join(titles[-5:]) for titles in rows.history_titles]
    written = RecCoTs(work / "reccots")
    written.folder.mkdir(exist_ok=True)
    pd.DataFrame(
        {"user_id": rows.user_id.to_numpy(), "as_of": rows.as_of.to_numpy(), "reccot": reccots, "iteration": 0}
    ).to_parquet(written.table, index=False)


def child(stage: str, work: Path, redis: str, shards: int, index: int) -> None:
    call = stage_call(stage, work, redis, shards, index)
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")  # not ru_maxrss: Linux carries that over from the parent across exec
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rss_after_imports_mb": before}))


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now; VmHWM: this process's peak) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(sizes: list[int], out: Path) -> dict:
    from trackrec.data.dataset import META_FILE

    tiny_encoder(out / "tiny-encoder")
    results = {"sizes": []}
    for events in sizes:
        folder = out / f"events-{events}"
        if not (folder / "log").exists():
            print(f"writing a log of {events:,} events", flush=True)
            write_log(folder / "log", events)
        work = folder / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        stages = {}
        with redis_server(work) as redis:
            for stage in STAGES:
                stages[stage] = run_child(stage, work, redis, f"{events:,} events")
                print(f"{events:>11,} events  {stage:<15} {stages[stage]['seconds']:8.1f} s "
                      f"{stages[stage]['peak_rss_mb']:8.0f} MB", flush=True)  # fmt: skip
        meta = json.loads((work / "dataset" / META_FILE).read_text())  # not Dataset.open: it hashes every table
        results["sizes"].append({"events": events, "users": meta["n_users"] - 1, "stages": stages})
    results["fixed_users"] = [fixed_users_run(events, out) for events in sizes]
    return summarised(results)


def summarised(results: dict) -> dict:
    """`results` with prepare_data's events/s at the largest size and each stage's growth exponent."""
    largest = results["sizes"][-1]
    results["prepare_events_per_s"] = largest["events"] / largest["stages"]["prepare_data"]["seconds"]
    results["growth_exponent"] = {stage: exponent(results["sizes"], stage) for stage in STAGES}
    return results


def rerun(results: dict, stages: list[str], out: Path) -> dict:
    """An earlier run's results with `stages` measured again at every size (after a change to them;
    the other stages' inputs are still in each size's work folder)."""
    for size in results["sizes"]:
        work = out / f"events-{size['events']}" / "work"
        with redis_server(work) as redis:
            for stage in stages:
                size["stages"][stage] = run_child(stage, work, redis, f"{size['events']:,} events")
                print(f"{size['events']:>11,} events  {stage:<15} {_cell(size['stages'][stage])} (s / MB)", flush=True)
    return summarised(results)


def run_child(stage: str, work: Path, redis: str, what: str, shards: int = 1, index: int = 0) -> dict:
    """One stage in a fresh process (`child`): its seconds and peak memory."""
    command = [sys.executable, __file__, "--stage", stage, "--work", str(work), "--redis", redis]
    command += ["--shards", str(shards), "--index", str(index)]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # as the cpu image sets it (images/cpu.Dockerfile)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{stage} at {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fixed_users_run(events: int, out: Path) -> dict:
    """prepare_data and train_ctr on a log of FIXED_USERS users and FIXED_ITEMS items: what grows
    is only the samples."""
    folder = out / f"fixed-users-{events}"
    if not (folder / "log").exists():
        print(f"writing a log of {events:,} events of {FIXED_USERS:,} users", flush=True)
        write_log(folder / "log", events, users=FIXED_USERS, items=FIXED_ITEMS)
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    row = {"events": events, "users": FIXED_USERS}
    for stage in ("prepare_data", "train_ctr"):
        row[stage] = run_child(stage, work, "", f"{events:,} events of {FIXED_USERS:,} users")
    print(f"{events:>11,} events of {FIXED_USERS:,} users: train_ctr {row['train_ctr']['seconds']:.1f} s "
          f"{row['train_ctr']['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    return row


def fan_out_run(events: int, shards: int, out: Path) -> dict:
    """prepare_data over `shards` user shards of the log of `events` events: plan, every shard and
    the join, each in a fresh process; the shards' data equals the one pass's (tests/test_prepare_shards.py)."""
    from trackrec.data.log_shards import PLAN_FILE

    folder = out / f"events-{events}"
    if not (folder / "log").exists():
        print(f"writing a log of {events:,} events", flush=True)
        write_log(folder / "log", events)
    work = folder / f"fan-out-{shards}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    what = f"{events:,} events in {shards} shards"
    row = {"events": events, "shards": shards, "plan_prepare": run_child("plan_prepare", work, "", what, shards)}
    planned = len(json.loads((work / "plan" / PLAN_FILE).read_text())["ranges"])
    row["prepare_shard"] = [run_child("prepare_shard", work, "", what, shards, i) for i in range(planned)]
    row["join_prepared"] = run_child("join_prepared", work, "", what, shards)
    largest = max(row["prepare_shard"], key=lambda r: r["peak_rss_mb"])
    print(f"{what}: plan {_cell(row['plan_prepare'])}, largest shard {_cell(largest)}, "
          f"join {_cell(row['join_prepared'])} (s / MB)", flush=True)  # fmt: skip
    shutil.rmtree(work)
    return row


def exponent(sizes: list[dict], stage: str) -> float | None:
    """k in seconds ~ events^k, least squares on log-log over every size."""
    if len(sizes) < 2:
        return None
    x = np.log([s["events"] for s in sizes])
    y = np.log([s["stages"][stage]["seconds"] for s in sizes])
    return float(np.polyfit(x, y, 1)[0])


def report(results: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="data path by stage: wall seconds / peak RSS (MB), one process per stage")
    table.add_column("stage")
    for size in results["sizes"]:
        table.add_column(f"{size['events'] / 1e6:g}M events\n{size['users']:,} users", justify="right")
    table.add_column("k (time ~ events^k)", justify="right")
    for stage in STAGES:
        cells = [f"{s['stages'][stage]['seconds']:.1f} s / {s['stages'][stage]['peak_rss_mb']:.0f}" for s in
                 results["sizes"]]  # fmt: skip
        k = results["growth_exponent"][stage]
        table.add_row(stage, *cells, "n/a" if k is None else f"{k:.2f}")
    console = Console(width=140)
    console.print(table)
    title = f"train_ctr (DIN, one epoch), {FIXED_USERS:,} users and {FIXED_ITEMS:,} items at every size"
    fixed = Table(title=title)
    for column in ("events = samples", "seconds", "peak RSS (MB)"):
        fixed.add_column(column, justify="right")
    for row in results["fixed_users"]:
        fixed.add_row(
            f"{row['events']:,}", f"{row['train_ctr']['seconds']:.1f}", f"{row['train_ctr']['peak_rss_mb']:.0f}"
        )
    console.print(fixed)
    console.print(f"prepare_data at {results['sizes'][-1]['events']:,} events: "
                  f"{results['prepare_events_per_s']:,.0f} events/s")  # fmt: skip
    if results.get("prepare_fan_out"):
        console.print(fan_out_table(results))
    draw(results, out / "scale.png")


def _cell(measured: dict) -> str:
    return f"{measured['seconds']:.1f} s / {measured['peak_rss_mb']:.0f}"


def fan_out_table(results: dict):
    """prepare_data in one pass against fanned out: seconds / peak RSS of each task kind (the
    largest shard's: what one pod must hold)."""
    from rich.table import Table

    one_pass = {s["events"]: s["stages"]["prepare_data"] for s in results["sizes"]}
    table = Table(title="prepare_data in one pass and over user shards: wall seconds / peak RSS (MB) per task")
    for column in ("events", "shards", "one pass", "plan", "largest shard", "all shards (sum s)", "join"):
        table.add_column(column, justify="right")
    for row in results["prepare_fan_out"]:
        shards = row["prepare_shard"]
        largest = max(shards, key=lambda r: r["peak_rss_mb"])
        single = one_pass.get(row["events"])
        table.add_row(
            f"{row['events']:,}", str(len(shards)), _cell(single) if single else "", _cell(row["plan_prepare"]),
            _cell(largest), f"{sum(r['seconds'] for r in shards):.1f}", _cell(row["join_prepared"]),
        )  # fmt: skip
    return table


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [s["events"] for s in results["sizes"]]
    fig, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for stage in STAGES:
        time_axis.plot(events, [s["stages"][stage]["seconds"] for s in results["sizes"]], "o-", label=stage)
        memory_axis.plot(events, [s["stages"][stage]["peak_rss_mb"] for s in results["sizes"]], "o-", label=stage)
    for axis, label in ((time_axis, "wall seconds"), (memory_axis, "peak RSS (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("events")
        axis.set_ylabel(label)
    time_axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/scale"))
    parser.add_argument("--stage", choices=STAGES + FAN_OUT, help=argparse.SUPPRESS)  # a child process: one stage
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fixed-only", action="store_true", help="only the fixed-users series, added to results.json")
    parser.add_argument("--fan-out", type=int, nargs="+", default=[], help="also prepare_data over these shard counts")
    parser.add_argument("--fan-out-only", action="store_true", help="only the --fan-out series, added to results.json")
    parser.add_argument(
        "--rerun", nargs="+", choices=STAGES, default=[], help="measure these stages again, in results.json"
    )
    args = parser.parse_args()
    if args.stage:
        child(args.stage, args.work, args.redis, args.shards, args.index)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fixed_only or args.fan_out_only or args.rerun:
        results = json.loads((args.out / "results.json").read_text())
        if args.fixed_only:
            results["fixed_users"] = [fixed_users_run(events, args.out) for events in sorted(args.sizes)]
        if args.rerun:
            results = rerun(results, args.rerun, args.out)
    else:
        results = measure(sorted(args.sizes), args.out)
    if args.fan_out:
        results["prepare_fan_out"] = [fan_out_run(e, n, args.out) for e in sorted(args.sizes) for n in args.fan_out]
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    report(results, args.out)


if __name__ == "__main__":
    main()
