"""Faults the tests share, on real servers on 127.0.0.1: a redis-server that can be killed (every row
lost), stalled (SIGSTOP: it holds its connections and answers nothing) and filled (maxmemory with
noeviction: writes refused), and a TCP proxy in front of an S3 server that cuts a connection in the
middle of a request."""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator

from tests.conftest import RedisServer


class FaultyRedis(RedisServer):
    """conftest's redis-server (no persistence), with the faults a bad day brings."""

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stall(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        self.stall()
        try:
            yield
        finally:
            self.resume()

    def used_memory(self) -> int:
        return int(self.client().info("memory")["used_memory"])

    def fill_limit(self, headroom: int) -> None:
        """Writes are refused (OOM, noeviction) once Redis holds `headroom` bytes more than now."""
        client = self.client()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", self.used_memory() + headroom)

    def unlimited(self) -> None:
        self.client().config_set("maxmemory", 0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a stopped process ignores SIGTERM until it runs again
            self.process.terminate()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def redis_server() -> Iterator[FaultyRedis]:
    server = FaultyRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _LoopbackServer:
    """A TCP listener on 127.0.0.1 (a port the OS picks) whose accepting thread hands each connection
    to `_connected`; a subclass sets its own state, then calls `_start`."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]

    def _start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._connected(conn)

    def _connected(self, conn: socket.socket) -> None:
        raise NotImplementedError


class CuttingProxy(_LoopbackServer):
    """127.0.0.1:`port` forwarding to `target` (host, port). Once `cut_requests_over(n)` is set, a
    request (the bytes a client sends before the server answers) longer than n bytes reaches the
    server cut after n bytes and its connection is reset: an upload that dies mid-request."""

    def __init__(self, target: tuple[str, int]):
        super().__init__()
        self.target = target
        self.limit: int | None = None
        self.cuts = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._start()

    def cut_requests_over(self, limit: int | None) -> None:
        self.limit = limit

    def _connected(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        pending = [0]  # bytes of the current request sent upstream since the last answer
        with self._lock:
            self._open |= {client, upstream}
        threading.Thread(target=self._requests, args=(client, upstream, pending), daemon=True).start()
        threading.Thread(target=self._answers, args=(upstream, client, pending), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, pending: list[int]) -> None:
        while data := _received(client):
            limit = self.limit
            if limit is not None and pending[0] + len(data) > limit:
                _send(upstream, data[: max(0, limit - pending[0])])
                self.cuts += 1
                self._reset(client, upstream)
                return
            pending[0] += len(data)
            if not _send(upstream, data):
                break
        self._reset(client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket, pending: list[int]) -> None:
        while data := _received(upstream):
            pending[0] = 0
            if not _send(client, data):
                break
        self._reset(client, upstream)

    def _reset(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):  # linger 0: close sends RST, as a dropped link looks
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            with self._lock:
                self._open.discard(sock)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            opened = list(self._open)
        self._reset(*opened)


def _received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def cutting_proxy(endpoint: str) -> Iterator[CuttingProxy]:
    """A CuttingProxy in front of the S3 server at `endpoint` (http://127.0.0.1:PORT)."""
    host, _, port = endpoint.removeprefix("http://").partition(":")
    proxy = CuttingProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()


class MisbehavingHTTP(_LoopbackServer):
    """An HTTP/1.1 server on 127.0.0.1 that answers the paths in `answers` (200, their JSON, the
    connection kept) and meets any other request with `fault`: "silent" (reads it, never answers),
    "drip" (an answer sent one byte each `interval` s) or "endless" (a 200 whose body never ends).
    It misbehaves for `lifetime` s from its start, then closes each connection it is faulting, so a
    client without a bound of its own fails late instead of hanging the test."""

    FAULTS = ("silent", "drip", "endless")

    def __init__(
        self, fault: str, answers: dict[str, bytes] | None = None, interval: float = 0.2, lifetime: float = 6.0
    ):
        assert fault in self.FAULTS, fault
        super().__init__()
        self.fault, self.answers, self.interval = fault, answers or {}, interval
        self.until = time.monotonic() + lifetime
        self.faulted: list[tuple[str, float]] = []  # the request lines the fault met, and when (monotonic)
        self._stop = threading.Event()
        self._start()

    def _connected(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(max(0.1, self.until - time.monotonic()))
            reader = conn.makefile("rb")
            while line := reader.readline():
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    length = int(value) if name.strip().lower() == "content-length" else length
                reader.read(length)
                path = line.split()[1].decode().split("?")[0]
                if path not in self.answers:
                    self.faulted.append((line.decode().strip(), time.monotonic()))
                    self._misbehave(conn)
                    return
                body = self.answers[path]
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                conn.sendall(head.encode() + body)

    def _misbehave(self, conn: socket.socket) -> None:
        def going() -> bool:
            return not self._stop.is_set() and time.monotonic() < self.until

        if self.fault == "silent":
            self._stop.wait(max(0.0, self.until - time.monotonic()))
        elif self.fault == "drip":
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            for byte in answer + b" " * 100000:
                if not going():
                    return
                conn.sendall(bytes([byte]))
                self._stop.wait(self.interval)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
            while going():
                conn.sendall(b"0," * 32768)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@contextlib.contextmanager
def misbehaving_http(fault: str, **options) -> Iterator[MisbehavingHTTP]:
    server = MisbehavingHTTP(fault, **options)
    try:
        yield server
    finally:
        server.close()
