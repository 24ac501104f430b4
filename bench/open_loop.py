"""An open-loop load generator, run as its own process by bench/feast_online.py (so its CPU and GIL
are not the server's): one POST per scheduled send time, whether or not earlier ones answered,
each on a new TLS connection as a ranker's client opens one (urllib, one per read).

    python bench/open_loop.py < spec.json > answers.json

The spec: url (https://host:port/path), cafile, service, users, rate (req/s), seconds, timeout (s),
seed. Each request's latency runs from its scheduled send time, so a late send (the generator
behind) or a refused connection retried by the kernel (SYN retransmits at 1 s, 3 s) is counted, not
hidden. Writes, per request in schedule order: due (s from start), latency_ms, lag_ms (how late the
generator sent it), and error ("" when the answer was 200; the status, "timeout" or the exception
class otherwise).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import urllib.parse

import numpy as np


async def _post(host: str, port: int, tls: ssl.SSLContext, request: bytes) -> str:
    """ "" for a 200 whose body came whole, the status otherwise; the connection is closed after."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(request)
        status = (await reader.readline()).split(b" ", 2)[1].decode()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return "" if status == "200" else status
    finally:
        writer.close()


async def _run(spec: dict) -> list[dict]:
    target = urllib.parse.urlsplit(spec["url"])
    tls = ssl.create_default_context(cafile=spec["cafile"])
    tls.check_hostname = False  # a self-signed certificate for 127.0.0.1
    rng = np.random.default_rng(spec["seed"])
    count = int(spec["rate"] * spec["seconds"])
    ids = rng.integers(1, spec["users"] + 1, size=count)
    loop = asyncio.get_running_loop()
    answers: list[dict] = [{} for _ in range(count)]

    async def one(i: int, due: float) -> None:
        sent = loop.time()
        body = json.dumps({"feature_service": spec["service"], "entities": {"user_id": [int(ids[i])]}}).encode()
        request = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.hostname}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        try:
            async with asyncio.timeout(spec["timeout"]):
                error = await _post(target.hostname, target.port, tls, request)
        except TimeoutError:
            error = "timeout"
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as caught:
            error = type(caught).__name__
        answers[i] = {
            "due": due - start,
            "latency_ms": (loop.time() - due) * 1000,
            "lag_ms": (sent - due) * 1000,
            "error": error,
        }

    tasks = []
    start = loop.time() + 0.1
    for i in range(count):
        due = start + i / spec["rate"]
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return answers


if __name__ == "__main__":
    json.dump(asyncio.run(_run(json.load(sys.stdin))), sys.stdout)
