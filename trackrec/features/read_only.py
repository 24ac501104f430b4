"""A read-only front for `feast serve`: reader namespaces reach online reads and nothing else.

`feast serve` answers `/write-to-online-store`, `/push` and `/materialize` to anyone who can reach
it, so any reader could replace an arm's embeddings. In the chart the feature server listens on
127.0.0.1 inside its pod and this front, beside it, is the only port the Service exposes: it
forwards the read routes and answers 403 to everything else, with TLS where a certificate is given.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

READ_ROUTES = {("POST", "/get-online-features"), ("GET", "/health")}
MAX_BODY = 1 << 20  # a read asks for some users' features; larger bodies are refused
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}


def front(
    host: str, port: int, upstream: str, certfile: str | None = None, keyfile: str | None = None
) -> ThreadingHTTPServer:
    """A server on host:port forwarding the read routes to `upstream` (http://127.0.0.1:PORT)."""
    target = urllib.parse.urlsplit(upstream)
    server = ThreadingHTTPServer((host, port), _handler(target.hostname, target.port or 80))
    server.daemon_threads = True
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def _handler(upstream_host: str, upstream_port: int):
    class ReadOnly(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._refuse(413, f"request body over {MAX_BODY} bytes")
                return
            body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(upstream_host, upstream_port, timeout=30)
            try:
                upstream.request(method, path, body, {"Content-Type": self.headers.get("Content-Type", "")})
                answer = upstream.getresponse()
                data = answer.read()
            except OSError:
                self._refuse(502, "feature server unavailable")
                return
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_HEADERS | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

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
