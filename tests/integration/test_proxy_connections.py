"""The runtime's proxy (local.faults.FaultProxy) in front of the embedded AWS keeps its
connection to the endpoint alive between calls, and recovers when the endpoint closes it.

Every call of the app goes through the proxy when faults are injected (and every
PutEvents always); a new TCP connection per call was a fixed cost on each.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.faults import FaultProxy


class Upstream:
    """An HTTP/1.1 endpoint that answers every request and notes each client port."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.close_silently = False
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.ports.append(self.client_address[1])
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = upstream.close_silently

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxied() -> Iterator[tuple[Upstream, FaultProxy]]:
    upstream = Upstream()
    proxy = FaultProxy(upstream.url, rate=0.0)
    proxy.start()
    yield upstream, proxy
    proxy.stop()
    upstream.server.shutdown()
    upstream.server.server_close()


def _call(connection: http.client.HTTPConnection) -> int:
    connection.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB.ListTables"})
    response = connection.getresponse()
    response.read()
    return response.status


def test_calls_on_one_client_connection_reuse_one_upstream_connection(
    proxied: tuple[Upstream, FaultProxy],
) -> None:
    upstream, proxy = proxied
    client = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=30)
    assert [_call(client) for _ in range(4)] == [200] * 4
    client.close()
    assert len(upstream.ports) == 4
    assert len(set(upstream.ports)) == 1


def test_a_connection_the_endpoint_closed_is_replaced(
    proxied: tuple[Upstream, FaultProxy],
) -> None:
    upstream, proxy = proxied
    upstream.close_silently = True  # as an idle timeout does: no "Connection: close"
    client = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=30)
    assert [_call(client) for _ in range(3)] == [200] * 3
    client.close()
    assert len(upstream.ports) == 3
    assert len(set(upstream.ports)) == 3
