"""A fault-injecting proxy between the app and the AWS endpoint.

Every request the app makes goes through it; a chosen fraction is answered with a
``ThrottlingException`` instead of being forwarded, the way a throttled AWS call looks.
The runtime's own plumbing (stream reader, event tap) talks to the endpoint directly, so
only the app sees the faults.

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
THROTTLED = json.dumps({"__type": "ThrottlingException", "message": "injected fault"}).encode()


class FaultProxy:
    """Forwards to ``upstream``; fails ``rate`` of the requests."""

    def __init__(self, upstream: str, rate: float, seed: int | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.rate = rate
        self.injected = 0
        self.forwarded = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

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
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        try:
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

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
