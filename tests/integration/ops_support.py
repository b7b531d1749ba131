"""Running ``python -m ops`` as a real subprocess against a local runtime process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import jsonschema

from local_plugin.demo import call
from ops.schema import SCHEMAS
from tests.integration.test_local_runtime import ROOT

TABLE = "aggregator-events-local"
# No real AWS configuration can leak in: no profile, no credentials file, no IMDS.
CLEAN_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS"))},
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        document = json.loads(self.stdout)
        jsonschema.validate(document, SCHEMAS[document["command"]])
        return document


def run_ops(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``python -m ops ARGS`` in a child process; never a traceback on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "ops", *args],
        check=False,
        cwd=ROOT,
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


def aws_client(service: str, endpoint: str) -> Any:
    session = boto3.session.Session()
    return session.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def post(base: str, order_id: str, name: str, status: str, **extra: Any) -> None:
    code, body = call(
        "POST", f"{base}/orders/{order_id}/events", {"name": name, "status": status, **extra}
    )
    assert code in (200, 201), body


def wait_for_view(
    base: str, order_id: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll ``GET /orders/{id}`` until ``ready(view)``; fail with the last view."""
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = call("GET", f"{base}/orders/{order_id}")
        view = dict(body or {}) if status == 200 else {}
        if view and ready(view):
            return view
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} never got ready: {view}")


def wait_until_listed(endpoint: str, order_id: str, timeout: float = 30.0) -> None:
    """Poll the deadline buckets' partitions (a Query each) until one lists ``order_id``:
    the aggregator has read the order and listed it for the timeout sweep."""
    from chalicelib import table
    from chalicelib.config import get_settings

    client = aws_client("dynamodb", endpoint)
    shards = [table.bucket_partition(f"pending-{n}") for n in range(get_settings().pending_shards)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pk in shards:
            items = client.query(
                TableName=TABLE,
                KeyConditionExpression="OrderID = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            )["Items"]
            if any(order_id in item[table.BUCKET_ORDERS]["M"] for item in items):
                return
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} was never listed in a deadline bucket")


def partition(endpoint: str, order_id: str) -> list[dict[str, Any]]:
    """Every stored item of one order (a Query), to compare before and after."""
    items: list[dict[str, Any]] = aws_client("dynamodb", endpoint).query(
        TableName=TABLE,
        KeyConditionExpression="OrderID = :o",
        ExpressionAttributeValues={":o": {"S": order_id}},
        ConsistentRead=True,
    )["Items"]
    return items
