"""Benchmark (not a test): publishing RecCoT features, and reading them as a ranker does: through the
read-only TLS front, `feast serve` and Redis.

    python bench/feast_online.py [--users 10000] [--dim 384] [--rates 100,200,400] [--seconds 15]
        [--workers 2] [--max-requests 0] [--front-source PATH ...]

- Publish rows/s of `trackrec.features.versions.publish` (checks, offline parquet, chunked online
  writes, completion mark) against a bare `write_to_online_store` of the same rows (the baseline),
  on SQLite and on a real redis-server on 127.0.0.1.
- Reads on the Redis store, client -> front (TLS) -> `feast serve` (--workers) -> Redis, at each of
  --rates for --seconds: bench/open_loop.py, in its own process, sends each request on schedule
  whether or not earlier ones answered, one TLS connection per read as the ranker's client does,
  and times it from its scheduled send time. Per rate: p50, p99, max, errors (non-200 or past the
  timeout), reads over 0.9 s and the kernel's listen-queue drops (a dropped SYN is retried after
  1 s, then 3 s), the CPU milliseconds per request of the front, of `feast serve` (/proc/<pid>/stat
  before and after) and of the generator, and how late the generator sent (its p99: if high, the
  generator, not the server, was short of CPU). `feast serve` runs as the chart runs it (--workers,
  --max-requests 0); feast's own default, 1000, replaces each worker after ~1000 reads, and evenly
  loaded workers are replaced together: a 1-3 s stall. Each --front-source is a trackrec tree whose
  front is measured (default: this one), e.g. a `git worktree add /tmp/trackrec-before <commit>`,
  all against the same feast serve and generator.
Traffic goes to 127.0.0.1 only; every server is started and stopped here. Writes results.json and
latency.png (each read's latency by its send time: stalls show as columns) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from servers import (  # noqa: E402 (bench/, the script's own folder)
    cpu_seconds,
    feast_serve,
    listen_overflows,
    read_only_front,
    redis_server,
    self_signed,
)

from trackrec.features import arms, versions  # noqa: E402
from trackrec.features.store import StoreConfig, open_store  # noqa: E402

READ_COLUMNS = [  # header, results key, format
    ("req/s", "rate", "g"),
    ("p50 ms", "p50_ms", ".1f"),
    ("p99 ms", "p99_ms", ".1f"),
    ("max ms", "max_ms", ".0f"),
    ("errors", "errors", "d"),
    (">0.9 s", "over_900_ms", "d"),
    ("listen drops", "listen_overflows", "d"),
    ("front CPU ms/req", "front_cpu_ms_per_request", ".2f"),
    ("feast CPU ms/req", "feast_cpu_ms_per_request", ".2f"),
    ("generator CPU ms/req", "generator_cpu_ms_per_request", ".2f"),
    ("send lag p99 ms", "send_lag_p99_ms", ".1f"),
]
GENERATOR_NICE = 10  # the servers win the CPU: a starved generator shows as its send lag, not as server time
TIMEOUT = 5.0  # seconds a read may take before it counts as an error: past a 3 s SYN retransmit


def table_of(users: int, dim: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, users + 1),
            "as_of": 1_764_460_800,  # the Unix second each snapshot summarises its user as of
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
    arms.assign(store, "control", "v1")
    rows = pd.read_parquet(Path(config.offline_root) / "v1.parquet")
    start = time.perf_counter()
    store.feast.write_to_online_store("reccot_v1", rows)
    bare = time.perf_counter() - start
    return {"publish_rows_per_s": len(table) / ours, "bare_write_rows_per_s": len(table) / bare}


def measure_reads(front: tuple[int, int], feast: int, cert: Path, users: int, rate: float, seconds: float) -> dict:
    """One rate through the front at `front` (port, pid) over feast serve (pid `feast`)."""
    port, pid = front
    spec = {"url": f"https://127.0.0.1:{port}/get-online-features", "cafile": str(cert), "service": "ctr_control",
            "users": users, "rate": rate, "seconds": seconds, "timeout": TIMEOUT, "seed": 1}  # fmt: skip
    before = {"front": cpu_seconds(pid), "feast": cpu_seconds(feast), "generator": children_cpu_seconds()}
    overflows = listen_overflows()
    generator = [sys.executable, str(Path(__file__).with_name("open_loop.py"))]
    done = subprocess.run(
        generator,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.nice(GENERATOR_NICE),
    )
    overflows = listen_overflows() - overflows
    after = {"front": cpu_seconds(pid), "feast": cpu_seconds(feast), "generator": children_cpu_seconds()}
    answers = pd.DataFrame(json.loads(done.stdout))
    latency = answers["latency_ms"]
    return {
        "rate": rate,
        "requests": len(answers),
        "errors": int((answers["error"] != "").sum()),
        "error_kinds": answers.loc[answers["error"] != "", "error"].value_counts().to_dict(),
        "p50_ms": float(latency.quantile(0.5)),
        "p99_ms": float(latency.quantile(0.99)),
        "max_ms": float(latency.max()),
        "over_900_ms": int((latency > 900).sum()),  # a SYN retransmitted (1 s, then 3 s) lands here
        "listen_overflows": overflows,
        "send_lag_p99_ms": float(answers["lag_ms"].quantile(0.99)),
        **{f"{name}_cpu_ms_per_request": (after[name] - before[name]) * 1000 / len(answers) for name in after},
        "due_s": answers["due"].tolist(),
        "latencies_ms": latency.tolist(),
    }


def children_cpu_seconds() -> float:
    """CPU seconds of this process's children that have exited (here: each generator run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_rates(
    repo: str, fronts: list[Path], feast_options: dict, users: int, rates: list[float], seconds: float, folder: Path
) -> dict:
    """{front label: [one measure_reads per rate]}, every front over one `feast serve`."""
    cert, key = self_signed(folder)
    results = {}
    with feast_serve(repo, **feast_options) as (upstream, feast):
        body = {"feature_service": "ctr_control", "entities": {"user_id": [1]}}
        requests.post(f"{upstream}/get-online-features", json=body, timeout=30)  # the first read loads the registry
        for source in fronts:
            label = f"{source.name}@{git_head(source)}"
            with read_only_front(source, upstream, cert, key) as front:
                measure_reads(front, feast, cert, users, rate=20, seconds=2)  # warms every worker; not counted
                results[label] = [measure_reads(front, feast, cert, users, rate, seconds) for rate in rates]
    return results


def git_head(tree: Path) -> str:
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "diff", "--quiet", "HEAD", "--", "trackrec/features/read_only.py"])
    return head.stdout.strip() + ("+edits" if dirty.returncode else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rates", type=lambda text: [float(r) for r in text.split(",")], default=[100, 200, 400])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2, help="feast serve's worker processes")
    parser.add_argument("--max-requests", type=int, default=0, help="feast serve's worker recycling (0: never)")
    parser.add_argument("--front-source", type=Path, action="append", help="a trackrec tree whose front to measure")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/feast_online"))
    args = parser.parse_args()
    fronts = [path.resolve() for path in args.front_source or [Path(__file__).resolve().parents[1]]]
    args.out.mkdir(parents=True, exist_ok=True)
    table = table_of(args.users, args.dim)
    publish = {}
    with tempfile.TemporaryDirectory() as scratch:
        with redis_server(Path(scratch)) as redis:
            stores = {
                "sqlite": StoreConfig(repo=f"{scratch}/sqlite", dim=args.dim),
                "redis": StoreConfig(repo=f"{scratch}/redis", online="redis", redis=redis, dim=args.dim),
            }
            for name, config in stores.items():
                publish[name] = measure_publish(config, table)
            feast_options = {"workers": args.workers, "max_requests": args.max_requests}
            reads = read_rates(
                stores["redis"].repo, fronts, feast_options, args.users, args.rates, args.seconds, Path(scratch)
            )
    show(publish, reads, args)
    plot(reads, args.out / "latency.png")
    summary = {
        "publish": publish,
        "reads": {
            label: [{k: v for k, v in r.items() if k not in ("due_s", "latencies_ms")} for r in rows]
            for label, rows in reads.items()
        },
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'results.json'} and latency.png")


def show(publish: dict, reads: dict, args: argparse.Namespace) -> None:
    console = Console(width=160)
    view = Table(title=f"Feast publish: {args.users:,} users x {args.dim} dims")
    for column in ("store", "publish rows/s", "bare write rows/s", "ratio"):
        view.add_column(column, justify="right")
    for name, r in publish.items():
        ratio = r["publish_rows_per_s"] / r["bare_write_rows_per_s"]
        view.add_row(name, f"{r['publish_rows_per_s']:,.0f}", f"{r['bare_write_rows_per_s']:,.0f}", f"{ratio:.2f}")
    console.print(view)
    view = Table(
        title=f"Reads: open loop -> front (TLS) -> feast serve ({args.workers} workers, --max-requests "
        f"{args.max_requests}) -> Redis, {args.seconds:g} s per rate"
    )
    view.add_column("front")
    for header, _, _ in READ_COLUMNS:
        view.add_column(header, justify="right")
    for label, rows in reads.items():
        for r in rows:
            view.add_row(label, *(f"{r[key]:{form}}" for _, key, form in READ_COLUMNS))
    console.print(view)


def plot(reads: dict, path: Path) -> None:
    rows = max(len(r) for r in reads.values())
    figure, axes = plt.subplots(rows, 1, figsize=(8, 2.6 * rows), squeeze=False, sharey=True)
    for label, results in reads.items():
        for axis, r in zip(axes[:, 0], results, strict=False):
            axis.scatter(r["due_s"], r["latencies_ms"], s=2, alpha=0.5, label=f"{label} (p99 {r['p99_ms']:.0f} ms)")
            axis.set(yscale="log", ylabel="latency (ms)", title=f"{r['rate']:g} req/s")
            axis.legend(loc="upper right", markerscale=4)
    axes[-1, 0].set_xlabel("send time (s)")
    figure.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
