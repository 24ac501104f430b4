"""Servers the benchmarks start on 127.0.0.1 and stop themselves (the tests have theirs in
tests/conftest.py, where a missing tool skips or, in CI, fails)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FRONT = """import sys
from trackrec.features import read_only
print(read_only.__file__, flush=True)
read_only.front("127.0.0.1", int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]).serve_forever()
"""  # the call both the chart's `trackrec features read-only-front` and any older tree's front make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, seconds: float = 90) -> None:
    """Until something answers on `port`; an error once `process` has exited or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not start") from None
            time.sleep(0.05)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Debian's redis-server on a free port, nothing persisted (its working folder `folder`);
    yields its host:port."""
    binary = shutil.which("redis-server") or sys.exit("redis-server not found: run `make setup`")
    port = free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(folder)]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, process, seconds=10)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def feast_serve(repo: str, workers: int, max_requests: int) -> Iterator[tuple[str, int]]:
    """`feast serve` on `repo` with `workers` worker processes, each replaced after `max_requests`
    reads (0: never); yields its URL and pid."""
    port = free_port()
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    args = [
        feast,
        "-c",
        repo,
        "serve",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    args += ["--max-requests", str(max_requests)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, server)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def read_only_front(source: Path, upstream: str, cert: Path, key: Path) -> Iterator[tuple[int, int]]:
    """The read-only TLS front of the trackrec tree at `source` (its read_only.py, not the installed
    one) over `upstream`; yields its port and pid."""
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(source)}
    args = [sys.executable, "-c", FRONT, str(port), upstream, str(cert), str(key)]
    front = subprocess.Popen(args, cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        loaded = Path(front.stdout.readline().strip())
        if not loaded.is_relative_to(source.resolve()):
            raise RuntimeError(f"the front loaded {loaded}, not the one under {source}")
        wait_for(port, front, seconds=30)
        yield port, front.pid
    finally:
        front.terminate()
        front.wait(timeout=30)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """An RSA-2048 certificate for 127.0.0.1 and its key (a cert-manager default), written to `folder`."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, its threads and its children, living or reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except FileNotFoundError:  # exited meanwhile: its parent counts it once reaped
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime (stat fields 14-17)
    return ticks / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(c) for c in children)


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (TcpExt
    ListenOverflows, machine-wide): each one is a client's SYN retransmitted after 1 s, then 3 s."""
    names, values = [
        line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")
    ]
    return int(values[names.index("ListenOverflows")])
