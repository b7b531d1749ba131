"""The web UI's HTTP server: static assets and a small JSON API over the pipeline.

API (all JSON; bad input is a 4xx naming the problem, never a traceback):

* ``GET /api/overview``: the app's functions, rules and the plug-in's views;
* ``GET /api/activity?since=N``: invocations and routed events newer than ``N``;
* ``GET /api/streams``: stream mappings, asynchronous queues, holding queues and their
  messages, and what the plug-in parked;
* ``GET /api/views/NAME`` and ``GET /api/views/NAME/KEY``: a plug-in view, one card;
* ``POST /api/redrive``: ``{"queue": NAME, "messageId": ID}`` or
  ``{"parked": SOURCE, "id": ID}`` (through the plug-in);
* ``POST /api/pattern``: ``{"EventPattern": TEXT, "Event": TEXT}``, answered as
  EventBridge's ``TestEventPattern`` (:mod:`local.patterns`).

Example::

    ui = UiServer(pipeline, sqs, streams, plugin, port=0)
    ui.start()
    print(ui.url)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local import patterns
from local.pipeline import Pipeline
from local.plugins import View, hook
from local.ui.holding import Queues, RedriveError

# 8000 is `chalice local`, 8001 the runtime's API, 8002 its embedded AWS (issue 10).
DEFAULT_UI_PORT = 8003
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UiApi:
    """What the routes answer; no HTTP here (unit-testable)."""

    def __init__(self, pipeline: Pipeline, queues: Queues, plugin: object | None) -> None:
        self.pipeline = pipeline
        self.queues = queues
        self.plugin = plugin
        views = hook(plugin, "views")
        self.views: dict[str, View] = {view.name: view for view in (views() if views else [])}

    def overview(self) -> dict[str, Any]:
        functions = self.pipeline.functions
        return {
            "functions": sorted(self.pipeline.settings.functions),
            "rules": [
                {
                    "name": rule.name,
                    "pattern": rule.pattern,
                    "bus": rule.bus,
                    "enabled": rule.enabled,
                    "target": functions.deployed_name(rule.name),
                }
                for rule in self.pipeline.router.rules
            ],
            "views": [
                {"name": v.name, "title": v.title, "kind": v.kind} for v in self.views.values()
            ],
        }

    def activity(self, since: int) -> dict[str, Any]:
        return self.pipeline.activity.snapshot(since)

    def streams(self) -> dict[str, Any]:
        parked = hook(self.plugin, "parked")
        return {
            "mappings": [mapping.snapshot() for mapping in self.pipeline.mappings],
            "async": self.pipeline.invocations.snapshot(),
            "queues": self.queues.snapshot(),
            "parked": parked() if parked else [],
        }

    def view(self, name: str, key: str | None) -> Any:
        view = self.views.get(name)
        if view is None:
            raise HttpError(404, f"no view {name!r}; the plug-in offers {sorted(self.views)}")
        if key is None:
            return view.data()
        if view.detail is None:
            raise HttpError(404, f"view {name!r} has no detail")
        found = view.detail(key)
        if found is None:
            raise HttpError(404, f"view {name!r} has nothing for {key!r}")
        return found

    def redrive(self, request: dict[str, Any]) -> dict[str, Any]:
        if "parked" in request:
            redrive = hook(self.plugin, "redrive")
            if redrive is None:
                raise HttpError(400, "the app's plug-in has no redrive")
            source, key = _text(request, "parked"), _text(request, "id")
            done: dict[str, Any] = redrive(source, key)
            if not done.get("ok"):
                raise HttpError(409, str(done.get("detail") or "redrive did not complete"))
            return done
        try:
            return self.queues.redrive(_text(request, "queue"), _text(request, "messageId"))
        except RedriveError as err:
            raise HttpError(409, str(err)) from None

    def pattern(self, request: Any) -> tuple[int, dict[str, Any]]:
        try:
            return 200, {"Result": patterns.evaluate_request(request)}
        except patterns.PatternTestError as err:
            return 400, err.as_json()


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"{name!r} must be a non-empty string")
    return value


class UiServer:
    """The UI on ``host:port`` (0: a free port), in a daemon thread."""

    def __init__(
        self,
        pipeline: Pipeline,
        queues: Queues,
        plugin: object | None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_UI_PORT,
    ) -> None:
        self.api = UiApi(pipeline, queues, plugin)
        self._server = ThreadingHTTPServer((host, port), _handler(self.api))
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="local-ui", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _routes(api: UiApi) -> list[tuple[str, str, Callable[[list[str], dict[str, Any]], Any]]]:
    return [
        ("GET", "overview", lambda parts, q: api.overview()),
        ("GET", "activity", lambda parts, q: api.activity(_since(q))),
        ("GET", "streams", lambda parts, q: api.streams()),
        ("GET", "views", lambda parts, q: api.view(parts[0], parts[1] if len(parts) > 1 else None)),
    ]


def _since(query: dict[str, Any]) -> int:
    raw = (query.get("since") or ["0"])[0]
    if not raw.isdigit():
        raise HttpError(400, "'since' must be a sequence number (0 or more)")
    return int(raw)


def _handler(api: UiApi) -> type[BaseHTTPRequestHandler]:
    routes = _routes(api)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html"):
                self._static("index.html")
            elif url.path.startswith("/static/"):
                self._static(url.path.removeprefix("/static/"))
            elif url.path.startswith("/api/"):
                self._api("GET", url.path, parse_qs(url.query))
            else:
                self._json(404, {"error": f"no page {url.path}"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            self._api("POST", url.path, {})

        def _api(self, method: str, path: str, query: dict[str, Any]) -> None:
            segments = [unquote(p) for p in path.removeprefix("/api/").split("/") if p]
            name, parts = (segments[0], segments[1:]) if segments else ("", [])
            try:
                if method == "POST":
                    self._post(name)
                    return
                for route_method, route, answer in routes:
                    if route_method == method and route == name:
                        self._json(200, answer(parts, query))
                        return
                raise HttpError(404, f"no API {method} {path}")
            except HttpError as err:
                self._json(err.status, {"error": err.message})
            except Exception as err:  # noqa: BLE001 - one line naming the cause, no traceback
                self._json(500, {"error": f"{type(err).__name__}: {err}"})

        def _post(self, name: str) -> None:
            request = self._body()
            if name == "pattern":
                self._json(*api.pattern(request))
            elif name == "redrive":
                if not isinstance(request, dict):
                    raise HttpError(400, "the body must be a JSON object")
                self._json(200, api.redrive(request))
            else:
                raise HttpError(404, f"no API POST /api/{name}")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise HttpError(413, f"the body is over {MAX_BODY} bytes")
            if "json" not in (self.headers.get("Content-Type") or ""):
                raise HttpError(415, "send Content-Type: application/json")
            try:
                return json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                raise HttpError(400, "the body is not JSON") from None

        def _static(self, name: str) -> None:
            path = (STATIC / name).resolve()
            if path.parent != STATIC or not path.is_file():
                self._json(404, {"error": f"no asset {name}"})
                return
            self._send(
                200, CONTENT_TYPES.get(path.suffix, "application/octet-stream"), path.read_bytes()
            )

        def _json(self, status: int, document: Any) -> None:
            self._send(status, "application/json", json.dumps(document, default=str).encode())

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
