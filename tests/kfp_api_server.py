"""A small KFP v2beta1 REST server on 127.0.0.1 that records every request and keeps just enough
state (pipelines, versions, experiments, recurring runs) for the client's calls to succeed.

With `token` it acts as multi-user Kubeflow behind an auth proxy: a request without that bearer
token is answered 302 to a login page (`login_redirect`) or 401, and with `namespace` the
namespaced calls (experiments, pipeline uploads and listings, recurring-run listings not by experiment)
must name it or get 403, as where KFP sets REQUIRE_NAMESPACE_FOR_PIPELINES. Pipelines belong to the
namespace they were uploaded into (none: shared) and a listing shows only its namespace's. `failing` holds
"METHOD /path" routes that answer 500.

No KFP server can run here; the client's requests are what the tests check.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/apis/v2beta1"


class KFPApiServer:
    def __init__(
        self,
        token: str | None = None,
        namespace: str | None = None,
        login_redirect: bool = False,
        failing: tuple[str, ...] = (),
    ):
        self.token, self.namespace, self.login_redirect, self.failing = token, namespace, login_redirect, failing
        self.requests: list[dict] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.recurring: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == API + path]

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def _refusal(self, method: str, path: str, query: dict, body: dict, headers) -> tuple[int, dict] | None:
        """What an auth proxy and KFP's namespace check answer instead of the route, if anything."""
        if self.token and headers.get("Authorization") != f"Bearer {self.token}":
            return (302, {}) if self.login_redirect else (401, {"error": "missing or invalid token"})
        namespaced = (method == "POST" and path in ("/experiments", "/pipelines/upload")) or (
            method == "GET"
            and (path in ("/experiments", "/pipelines") or (path == "/recurringruns" and "experiment_id" not in query))
        )
        asked = body.get("namespace") or _namespace(query)
        if self.namespace and namespaced and asked != self.namespace:
            return 403, {"error": f"PermissionDenied: namespace {asked!r}"}
        if f"{method} {path}" in self.failing:
            return 500, {"error": "internal"}
        return None

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        name = (query.get("name") or [None])[0]
        if path == "/healthz":
            return 200, {"multi_user": self.namespace is not None}
        if method == "GET" and path == "/pipelines":
            wanted, namespace = _filtered_name(query), _namespace(query)
            listed = [p for p in self.pipelines.values() if p["namespace"] == namespace]
            return 200, {"pipelines": [p for p in listed if wanted in (None, p["display_name"])]}
        if method == "POST" and path == "/pipelines/upload":
            if [p for p in self.pipelines.values() if (p["display_name"], p["namespace"]) == (name, _namespace(query))]:
                return 409, {"error": f"AlreadyExists: pipeline {name!r}"}
            pipeline = {"pipeline_id": self._new_id("pipeline"), "display_name": name, "namespace": _namespace(query)}
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            self.versions[pipeline["pipeline_id"]] = [self._version(pipeline["pipeline_id"], name)]
            return 200, pipeline
        if method == "POST" and path == "/pipelines/upload_version":
            pipeline_id = query["pipelineid"][0]
            version = self._version(pipeline_id, name)
            self.versions[pipeline_id].append(version)
            return 200, version
        if method == "GET" and path.startswith("/pipelines/") and path.endswith("/versions"):
            wanted = _filtered_name(query)
            listed = self.versions.get(path.split("/")[2], [])
            return 200, {"pipeline_versions": [v for v in listed if wanted in (None, v["display_name"])]}
        if method == "GET" and path == "/experiments":
            wanted = _filtered_name(query)
            return 200, {"experiments": [e for e in self.experiments.values() if wanted == e["display_name"]]}
        if method == "POST" and path == "/experiments":
            experiment = {"experiment_id": self._new_id("experiment"), "display_name": body["display_name"]}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if method == "POST" and path == "/runs":
            return 200, body | {"run_id": self._new_id("run")}
        if method == "GET" and path == "/recurringruns":
            return 200, {"recurringRuns": list(self.recurring.values())}  # the API spells this one so
        if method == "POST" and path == "/recurringruns":
            created = body | {"recurring_run_id": self._new_id("recurring")}
            self.recurring[created["recurring_run_id"]] = created
            return 200, created
        if method == "DELETE" and path.startswith("/recurringruns/"):
            self.recurring.pop(path.split("/")[2], None)
            return 200, {}
        return 404, {"error": f"no route {method} {path}"}

    def _version(self, pipeline_id: str, name: str) -> dict:
        return {"pipeline_id": pipeline_id, "pipeline_version_id": self._new_id("version"), "display_name": name}

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str):
                url = urllib.parse.urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body, upload = _body(self.headers.get("Content-Type", ""), raw)
                record = {"method": method, "path": url.path, "query": urllib.parse.parse_qs(url.query)}
                owner.requests.append(
                    record
                    | {"body": body, "upload": upload, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                route = (method, url.path.removeprefix(API), record["query"], body)
                status, answer = owner._refusal(*route, self.headers) or owner._route(*route)
                data = json.dumps(answer).encode()
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/dex/auth?client_id=kubeflow-oidc-authservice")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_DELETE(self):
                self._serve("DELETE")

            def log_message(self, *args):
                pass

        return Handler


def _namespace(query: dict) -> str | None:
    return (query.get("namespace") or [None])[0]


def _filtered_name(query: dict) -> str | None:
    """The display name a list call's filter asks for (the client's name lookups), if any."""
    if "filter" not in query:
        return None
    predicates = json.loads(query["filter"][0]).get("predicates", [])
    names = (p.get("string_value", p.get("stringValue")) for p in predicates if p.get("key") == "display_name")
    return next(names, None)


def _body(content_type: str, raw: bytes) -> tuple[dict, bytes | None]:
    """JSON bodies as dicts; a multipart upload's file as bytes."""
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        return {}, next(part.get_content() for part in message.iter_parts())
    return (json.loads(raw) if raw else {}), None
