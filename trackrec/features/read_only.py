"""A read-only front for `feast serve`: reader namespaces reach online reads and nothing else.

`feast serve` answers `/write-to-online-store`, `/push` and `/materialize` to anyone who can reach
it, so any reader could replace an arm's embeddings. In the chart the feature server listens on
127.0.0.1 inside its pod and this front, beside it, is the only port the Service exposes: it
forwards the read routes and answers 403 to everything else, with TLS where a certificate is given.
"""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

READ_ROUTES = {("POST", "/get-online-features"), ("GET", "/health")}
MAX_BODY = 1 << 20  # a read asks for some users' features; larger bodies are refused
MAX_ANSWER = 4 << 20  # held whole per connection: MAX_CONNECTIONS x this stays well under the pod's 256Mi
MAX_CONNECTIONS = 32  # past this a new connection is closed at once instead of queueing a thread
LISTEN_BACKLOG = 128  # connections the kernel holds while the serving thread is busy; past socketserver's
# default of 5 Linux drops the SYN and the client waits for its retransmit, 1 s and then 3 s later
IO_TIMEOUT = 10  # seconds for the TLS handshake, each header/body read and each write
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}


def front(
    host: str, port: int, upstream: str, certfile: str | None = None, keyfile: str | None = None
) -> ThreadingHTTPServer:
    """A server on host:port forwarding the read routes to `upstream` (http://127.0.0.1:PORT)."""
    target = urllib.parse.urlsplit(upstream)
    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
    return _BoundedServer((host, port), _handler(target.hostname, target.port or 80), context)


class _BoundedServer(ThreadingHTTPServer):
    """Accepts on the serving thread only; the TLS handshake and all I/O run in the connection's
    own thread under IO_TIMEOUT, so an idle or slow client holds one of MAX_CONNECTIONS slots and
    nothing else."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address, handler, tls: ssl.SSLContext | None):
        super().__init__(address, handler)
        self.tls = tls
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over capacity: refused at once, the client retries another pod
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def finish_request(self, request, client_address):
        request.settimeout(IO_TIMEOUT)
        if self.tls is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except OSError:  # failed or timed-out handshake: only this connection is dropped
            return
        with request:
            self.RequestHandlerClass(request, client_address, self)


def _handler(upstream_host: str, upstream_port: int):
    idle = queue.LifoQueue(MAX_CONNECTIONS)  # keep-alive upstream connections, reused across readers

    class ReadOnly(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IO_TIMEOUT  # StreamRequestHandler.setup sets it on the socket

        def _refuse(self, status: int, why: str) -> None:
            data = json.dumps({"error": why}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forward(self, method: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if (method, path) not in READ_ROUTES:
                self._refuse(403, f"read-only feature server: {method} {path} is not an online read")
                return
            length = self.headers.get("Content-Length") or "0"
            if not length.isascii() or not length.isdigit():  # "-1" would read to EOF
                self._refuse(400, f"Content-Length {length[:20]!r} is not a byte count")
                return
            length = int(length)
            if length > MAX_BODY:
                self._refuse(413, f"request body over {MAX_BODY} bytes")
                return
            body = self.rfile.read(length) if length else None
            headers = {"Content-Type": self.headers.get("Content-Type", "")}
            try:
                upstream, answer, data = self._ask_upstream(method, path, body, headers)
            except OSError:
                self._refuse(502, "feature server unavailable")
                return
            if answer.will_close or not answer.isclosed():  # not read whole, or upstream closes it
                upstream.close()
            else:
                idle.put_nowait(upstream)  # never full: one connection per handler thread
            if len(data) > MAX_ANSWER:
                self._refuse(502, f"feature server answer over {MAX_ANSWER} bytes: ask for fewer ids")
                return
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_HEADERS | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _ask_upstream(self, method, path, body, headers):
            """A pooled connection first; one that upstream closed while it idled is replaced once."""
            while True:
                try:
                    upstream, pooled = idle.get_nowait(), True
                except queue.Empty:
                    upstream, pooled = http.client.HTTPConnection(upstream_host, upstream_port, timeout=30), False
                try:
                    upstream.request(method, path, body, headers)
                    answer = upstream.getresponse()
                    return upstream, answer, answer.read(MAX_ANSWER + 1)
                except OSError:
                    upstream.close()
                    if not pooled:
                        raise

        def do_GET(self):
            self._forward("GET")

        def do_POST(self):
            self._forward("POST")

        def do_PUT(self):
            self._forward("PUT")

        def do_DELETE(self):
            self._forward("DELETE")

        def do_PATCH(self):
            self._forward("PATCH")

        def log_message(self, *args):  # request lines carry user ids: not logged
            pass

    return ReadOnly
