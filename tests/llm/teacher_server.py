"""A small OpenAI-compatible /v1/chat/completions server on 127.0.0.1 for teacher tests.

`answer(prompt)` decides the reply; `mode` makes it misbehave: "garbage" (not a chat completion),
"slow" (answers after `delay` seconds), "flaky" (503 for the first `failures` requests), "denied"
(401 for every request, after `delay` seconds).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TeacherServer:
    def __init__(self, answer: Callable[[str], str], mode: str = "ok", delay: float = 0.0, failures: int = 0):
        self.answer, self.mode, self.delay, self.failures = answer, mode, delay, failures
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True  # a slow answer must not hold up shutdown
        self.server.handle_error = lambda request, address: None  # a client that gave up: expected here
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.requests.append({"body": request, "auth": self.headers.get("Authorization")})
                    count = len(outer.requests)
                if self.path != "/v1/chat/completions":
                    return self._send(404, b"{}")
                if outer.mode == "garbage":
                    return self._send(200, b"<html>upstream proxy error</html>", "text/html")
                if outer.mode == "denied":
                    time.sleep(outer.delay)
                    return self._send(401, b'{"error": "invalid api key"}')
                if outer.mode == "flaky" and count <= outer.failures:
                    return self._send(503, b'{"error": "overloaded"}')
                if outer.mode == "slow":
                    time.sleep(outer.delay)
                content = outer.answer(request["messages"][-1]["content"])
                reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
                if outer.mode == "drip":  # the headers at once, then the body a byte each `delay` s
                    body = json.dumps(reply).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(outer.delay)
                    return None
                return self._send(200, json.dumps(reply).encode())

        return Handler

    def __enter__(self) -> TeacherServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
