"""Benchmark (not a test): publishing RecCoT features and reading them through `feast serve`.

    python bench/feast_online.py [--users 10000] [--dim 384] [--rate 200] [--seconds 20]

- Publish rows/s of `trackrec.features.versions.publish` (checks, offline parquet, chunked online
  writes, completion mark) against a bare `write_to_online_store` of the same rows (the baseline),
  on SQLite and on a real redis-server on 127.0.0.1.
- Read latency through `feast serve` (two workers, one per core) at a fixed open-loop rate: requests are sent on
  schedule from a thread pool whether or not earlier ones answered; p50/p99 per store.
Traffic goes to 127.0.0.1 only; every server is started and stopped here. Writes results.json and
latency.png to --out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from servers import free_port, redis_server, wait_for  # noqa: E402 (bench/, the script's own folder)

from trackrec.features import versions  # noqa: E402
from trackrec.features.store import StoreConfig, open_store  # noqa: E402


def table_of(users: int, dim: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, users + 1),
            "reccot": [f"The user {u} prefers thoughtful dramas and dislikes slapstick." for u in range(users)],
            "iteration": 3,
            "embedding": list(rng.standard_normal((users, dim)).astype(np.float32)),
        }
    )


def measure_publish(config: StoreConfig, table: pd.DataFrame) -> dict:
    start = time.perf_counter()  # opening the store is part of a publish, as in the stage
    store = open_store(config)
    versions.publish(table, "v1", store, progress=False)
    ours = time.perf_counter() - start
    versions.assign(store, "control", "v1")
    rows = pd.read_parquet(Path(config.offline_root) / "v1.parquet")
    start = time.perf_counter()
    store.feast.write_to_online_store("reccot_v1", rows)
    bare = time.perf_counter() - start
    return {"publish_rows_per_s": len(table) / ours, "bare_write_rows_per_s": len(table) / bare}


def measure_reads(repo: str, users: int, rate: float, seconds: float) -> dict:
    port = free_port()
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    args = [feast, "-c", repo, "serve", "-h", "127.0.0.1", "-p", str(port), "--workers", "2"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/get-online-features"
    rng = np.random.default_rng(1)
    count = int(rate * seconds)
    ids = rng.integers(1, users + 1, size=count)
    sessions: dict[int, requests.Session] = {}

    def one(i: int, due: float) -> tuple[float, bool]:
        time.sleep(max(0.0, due - time.perf_counter()))
        session = sessions.setdefault(i % 64, requests.Session())
        sent = time.perf_counter()
        body = {"feature_service": "ctr_control", "entities": {"user_id": [int(ids[i])]}}
        try:
            ok = session.post(url, json=body, timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        return time.perf_counter() - sent, ok

    try:
        wait_for(port, server)
        requests.post(url, json={"feature_service": "ctr_control", "entities": {"user_id": [1]}}, timeout=30)
        with ThreadPoolExecutor(max_workers=64) as pool:
            start = time.perf_counter()
            futures = [pool.submit(one, i, start + i / rate) for i in range(count)]
            results = [f.result() for f in futures]
            elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = np.array([r[0] for r in results]) * 1000
    return {
        "requests": count,
        "achieved_rps": count / elapsed,
        "errors": sum(not r[1] for r in results),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "latencies_ms": latencies.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/feast_online"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = table_of(args.users, args.dim)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        with redis_server(Path(scratch)) as redis:
            stores = {
                "sqlite": StoreConfig(repo=f"{scratch}/sqlite", dim=args.dim),
                "redis": StoreConfig(repo=f"{scratch}/redis", online="redis", redis=redis, dim=args.dim),
            }
            for name, config in stores.items():
                results[name] = measure_publish(config, table)
                results[name] |= measure_reads(config.repo, args.users, args.rate, args.seconds)

    view = Table(title=f"Feast online store: {args.users:,} users x {args.dim} dims; reads at {args.rate:g} req/s")
    for column in (
        "store",
        "publish rows/s",
        "bare write rows/s",
        "ratio",
        "achieved req/s",
        "errors",
        "p50 ms",
        "p99 ms",
    ):
        view.add_column(column, justify="right")
    for name, r in results.items():
        view.add_row(
            name,
            f"{r['publish_rows_per_s']:,.0f}",
            f"{r['bare_write_rows_per_s']:,.0f}",
            f"{r['publish_rows_per_s'] / r['bare_write_rows_per_s']:.2f}",
            f"{r['achieved_rps']:.0f}",
            str(r["errors"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
        )
    Console().print(view)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, r in results.items():
        axis.hist(r["latencies_ms"], bins=60, alpha=0.6, label=f"{name} (p99 {r['p99_ms']:.1f} ms)")
    axis.set(xlabel="latency (ms)", ylabel="requests", title="feast serve read latency")
    axis.legend()
    figure.savefig(args.out / "latency.png", dpi=120, bbox_inches="tight")
    summary = {name: {k: v for k, v in r.items() if k != "latencies_ms"} for name, r in results.items()}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'results.json'} and latency.png")


if __name__ == "__main__":
    main()
