"""The runtime's embedded AWS (``python -m local.motoserver``) as a real child process.

boto3 keeps HTTP/1.1 connections open between calls (botocore's urllib3 pool); the
embedded AWS must let it, or every call of the runtime and the app pays a new TCP
connection and a server thread.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# moto routes a request by the service in its credential scope; it does not check the
# signature itself.
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0"
    ),
}


@pytest.fixture
def embedded_aws() -> Iterator[tuple[str, int]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "local.motoserver", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        found = re.match(r"listening on http://([\d.]+):(\d+)", server.stdout.readline())
        assert found, "the embedded AWS did not say where it listens"
        yield found.group(1), int(found.group(2))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_one_connection_serves_call_after_call(embedded_aws: tuple[str, int]) -> None:
    host, port = embedded_aws
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=HEADERS)
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 200
            assert body == {"TableNames": []}
            assert (response.getheader("Connection") or "").lower() != "close"
            assert not response.will_close
    finally:
        connection.close()


def test_it_stops_when_its_input_closes() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "local.motoserver", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    assert server.stdout.readline().startswith("listening on ")
    server.stdin.close()
    assert server.wait(timeout=60) == 0
