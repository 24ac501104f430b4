"""The read-only front's bounds, with real sockets on 127.0.0.1: an idle TLS client holds only its
own connection, Content-Length is a byte count, answers past the cap are refused, connections past
the cap are closed at once, a burst of connections waits in the listen queue."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.servers import self_signed
from trackrec.features import read_only


class _Upstream(BaseHTTPRequestHandler):
    """Answers /health with `size` bytes (a stand-in for feast serve's answers)."""

    protocol_version = "HTTP/1.1"
    size = 2

    def do_GET(self):
        data = b"x" * self.size
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def front_over_upstream(size=2, certfile=None, keyfile=None):
    handler = type("Sized", (_Upstream,), {"size": size})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as upstream:
        server = read_only.front("127.0.0.1", 0, f"http://127.0.0.1:{upstream}", certfile, keyfile)
        with serving(server) as port:
            yield port


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    return str(cert), str(key)


def test_an_idle_tls_connection_does_not_block_another_reader(certificate):
    with front_over_upstream(certfile=certificate[0], keyfile=certificate[1]) as port:
        idle = socket.create_connection(("127.0.0.1", port))  # connects, never says hello
        try:
            context = ssl.create_default_context(cafile=certificate[0])
            context.check_hostname = False
            reader = http.client.HTTPSConnection("127.0.0.1", port, timeout=3, context=context)
            reader.request("GET", "/health")
            assert reader.getresponse().status == 200
            reader.close()
        finally:
            idle.close()


@pytest.mark.parametrize("length", ["-1", "1e3", "+5", "２"])
def test_a_content_length_that_is_not_a_byte_count_is_refused(length):
    with front_over_upstream() as port:
        answer = raw(port, f"POST /get-online-features HTTP/1.1\r\nContent-Length: {length}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer


def test_an_answer_over_the_cap_is_refused():
    with front_over_upstream(size=read_only.MAX_ANSWER + 1) as port:
        assert raw(port, b"GET /health HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 502")
    with front_over_upstream(size=read_only.MAX_ANSWER) as port:
        assert raw(port, b"GET /health HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_slow_connections_past_the_cap_are_closed_not_threaded(monkeypatch):
    monkeypatch.setattr(read_only, "MAX_CONNECTIONS", 4)
    with front_over_upstream() as port:
        before = threading.active_count()
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        try:
            time.sleep(0.5)
            assert threading.active_count() - before <= 4
            assert slow[-1].recv(1) == b""  # closed at once, not queued
        finally:
            for sock in slow:
                sock.close()


def test_upstream_connections_are_reused():
    opened = []

    class Counting(_Upstream):
        def setup(self):
            opened.append(self.client_address)
            super().setup()

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Counting)) as upstream:
        with serving(read_only.front("127.0.0.1", 0, f"http://127.0.0.1:{upstream}")) as port:
            for _ in range(20):
                assert raw(port, b"GET /health HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert len(opened) == 1


def test_a_burst_of_connections_waits_in_the_listen_queue_not_for_a_syn_retransmit():
    """While the serving thread is busy (here: not serving yet) the kernel queues new connections up
    to the listen backlog; past it Linux drops the SYN and the reader's connect waits 1 s, then 3 s."""
    server = read_only.front("127.0.0.1", 0, "http://127.0.0.1:9")
    burst = []
    try:
        for _ in range(64):
            burst.append(socket.create_connection(server.server_address, timeout=0.5))
    finally:
        for sock in burst:
            sock.close()
        server.server_close()
