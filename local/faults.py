"""A proxy between the app and the AWS endpoint: injected faults and AWS's own limits.

Every request the app makes goes through it; a chosen fraction is answered with a
``ThrottlingException`` instead of being forwarded, the way a throttled AWS call looks.
``PutEvents`` requests are screened by :mod:`local.putevents` (entry count, request size,
per-entry errors), as EventBridge answers them; ``TestEventPattern`` is answered by
:mod:`local.patterns` (moto does not implement it). The runtime's own plumbing (stream
reader, event tap) talks to the endpoint directly, so only the app sees either.

Example::

    proxy = FaultProxy("http://127.0.0.1:5000", rate=0.05, seed=7)
    proxy.start()
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from local import patterns
from local.putevents import screen

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
PUT_EVENTS = "AWSEvents.PutEvents"
THROTTLED = json.dumps({"__type": "ThrottlingException", "message": "injected fault"}).encode()


class FaultProxy:
    """Forwards to ``upstream``; fails ``rate`` of the requests."""

    def __init__(
        self,
        upstream: str,
        rate: float,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.rate = rate
        self.injected = 0
        self.forwarded = 0
        self.refused_requests = 0
        self.refused_entries = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        # Told of each PutEvents entry refused here: (entry, error code, message).
        self.on_refused: Callable[[dict[str, Any], str, str], None] | None = None
        self._local = threading.local()  # each serving thread's connection to upstream
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _should_fail(self) -> bool:
        with self._lock:
            fail = self._random.random() < self.rate
            if fail:
                self.injected += 1
            else:
                self.forwarded += 1
            return fail

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any, bytes]:
        if headers.get("X-Amz-Target") == PUT_EVENTS:
            return self._put_events(method, path, headers, body)
        if headers.get("X-Amz-Target") == patterns.TARGET:  # moto does not implement it
            status, answer = patterns.answer(body)
            json_type = [("Content-Type", "application/x-amz-json-1.1")]
            if status != 200:
                json_type.append(("x-amzn-ErrorType", str(answer["__type"])))
            return status, json_type, json.dumps(answer).encode()
        return self._send(method, path, headers, body)

    def _put_events(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, Any, bytes]:
        """EventBridge's limits first; only the acceptable entries reach the endpoint."""
        request = json.loads(body or b"{}")
        screened = screen(request)
        json_type = [("Content-Type", "application/x-amz-json-1.1")]
        if screened.rejected is not None:
            code, message = screened.rejected
            with self._lock:
                self.refused_requests += 1
            for entry in request.get("Entries") or []:
                self._refused(entry, code, message)
            answer = {"__type": code, "message": message}
            return 400, [*json_type, ("x-amzn-ErrorType", code)], json.dumps(answer).encode()
        entries = request.get("Entries") or []
        passing = [e for e, error in zip(entries, screened.entry_errors, strict=True) if not error]
        results: list[dict[str, Any]] = []
        failed = 0
        if passing:
            status, upstream_headers, payload = self._send(
                method, path, headers, json.dumps({**request, "Entries": passing}).encode()
            )
            if status != 200:
                return status, upstream_headers, payload
            answered = json.loads(payload)
            results = list(answered.get("Entries") or [])
            failed = int(answered.get("FailedEntryCount") or 0)
        merged: list[dict[str, Any]] = []
        for error in screened.entry_errors:
            if error is None:
                merged.append(results.pop(0))
            else:
                merged.append({"ErrorCode": error[0], "ErrorMessage": error[1]})
                self._refused(entries[len(merged) - 1], *error)
                failed += 1
                with self._lock:
                    self.refused_entries += 1
        answer_body = json.dumps({"FailedEntryCount": failed, "Entries": merged}).encode()
        return 200, json_type, answer_body

    def _refused(self, entry: Any, code: str, message: str) -> None:
        if self.on_refused is not None and isinstance(entry, dict):
            self.on_refused(entry, code, message)

    def _send(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any, bytes]:
        """Forward on this thread's kept-alive connection to the endpoint. A reused
        connection the endpoint has closed meanwhile fails before the request is read,
        so the request is sent again once on a new one (as urllib3 does)."""
        forwarded = {k: v for k, v in dict(headers).items() if k.lower() != "content-length"}
        reused = getattr(self._local, "connection", None)
        if reused is not None:
            try:
                return self._exchange(reused, method, path, body, forwarded)
            except (http.client.RemoteDisconnected, ConnectionError):
                pass
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        self._local.connection = connection
        return self._exchange(connection, method, path, body, forwarded)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
    ) -> tuple[int, Any, bytes]:
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.status, response.getheaders(), response.read()
        except BaseException:
            connection.close()
            self._local.connection = None
            raise
        if response.will_close:
            connection.close()
            self._local.connection = None
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy._should_fail():
                    status, headers, payload = (
                        400,
                        [
                            ("Content-Type", "application/x-amz-json-1.0"),
                            ("x-amzn-ErrorType", "ThrottlingException"),
                        ],
                        THROTTLED,
                    )
                else:
                    status, headers, payload = proxy._forward(
                        self.command, self.path, self.headers, body
                    )
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
