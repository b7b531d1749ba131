"""The local runtime end to end: a real process, real HTTP on loopback, moto's server.

Each test talks to ``python -m local run`` the way a user does and reads what it prints.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import testing
from local.testing import free_port
from local_plugin.demo import call, wait_until_final

ROOT = Path(__file__).resolve().parents[2]


_free_port = free_port


class RuntimeProcess(testing.RuntimeProcess):
    """``local.testing.RuntimeProcess`` started from the project's root."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args, cwd=ROOT)


@pytest.fixture(scope="module")
def runtime() -> Iterator[tuple[RuntimeProcess, str, str]]:
    """One runtime for the module: (process, app URL, AWS endpoint URL)."""
    proc = RuntimeProcess()
    try:
        found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)")
        yield proc, found.group(1), found.group(2)
    finally:
        assert proc.stop() == 0
    proc.wait_for(r"shutting down")


def _post(base: str, order_id: str, name: str, status: str, **extra: Any) -> tuple[int, Any]:
    return call(
        "POST", f"{base}/orders/{order_id}/events", {"name": name, "status": status, **extra}
    )


def test_reference_scenario_reaches_invoiced_and_rejected(
    runtime: tuple[RuntimeProcess, str, str],
) -> None:
    proc, base, _ = runtime
    _post(base, "ref-ok", "Account Check", "passed")
    _post(base, "ref-ok", "In Stock", "passed")
    _post(base, "ref-bad", "Account Check", "failed", reason="no credit")
    _post(base, "ref-bad", "In Stock", "passed")
    assert wait_until_final(base, "ref-ok")["status"] == "invoiced", "\n".join(proc.lines)
    rejected = wait_until_final(base, "ref-bad")
    assert rejected["status"] == "rejected"
    assert rejected["problem"]["failed"] == [{"check": "Account Check", "reason": "no credit"}]
    proc.wait_for(r"\[order ref-ok\] rule matched → invoice_processing")
    proc.wait_for(r"\[order ref-bad\] rule matched → problem_handler")


def test_duplicates_give_one_invoice(runtime: tuple[RuntimeProcess, str, str]) -> None:
    proc, base, _ = runtime
    for _ in range(3):
        _post(base, "dup", "Account Check", "passed", occurredAt="2026-01-01T10:00:00Z")
        _post(base, "dup", "In Stock", "passed", occurredAt="2026-01-01T10:00:00Z")
    view = wait_until_final(base, "dup")
    assert view["status"] == "invoiced"
    proc.wait_for(r"\[order dup\] handler done: \{'outcome': 'invoiced'")
    time.sleep(1.5)  # one batching window: any second delivery would show by now
    assert proc.count(r"\[order dup\] source event \w+ (Account Check|In Stock)") == 2
    # With the deployed ParallelizationFactor the two checks may be aggregated in two
    # concurrent batches and the target may run twice (at least once, as on AWS); the
    # outcome stays one invoice.
    assert wait_until_final(base, "dup")["invoice"] == view["invoice"]


def test_poison_order_is_dead_lettered_and_others_complete(
    runtime: tuple[RuntimeProcess, str, str],
) -> None:
    proc, base, endpoint = runtime
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    # Another writer corrupted this order's own record: reading the order always fails.
    dynamodb.put_item(
        TableName="aggregator-events-local",
        Item={
            "OrderID": {"S": "poison"},
            "EventName": {"S": "#order"},
            "Deadline": {"S": "not a time"},
        },
    )
    _post(base, "poison", "In Stock", "passed")
    _post(base, "healthy", "Account Check", "passed")
    _post(base, "healthy", "In Stock", "passed")
    assert wait_until_final(base, "healthy")["status"] == "invoiced", "\n".join(proc.lines)
    # A permanent fault: parked by the app itself, the batch goes on, no retry loop.
    # The poison order's records may be in another lane (ParallelizationFactor) than the
    # healthy order's, so its batch may still be running: wait (bounded) for the park.
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{base}/orders/poison") as answer:
            view = json.loads(answer.read())
        if "deadLettered" in view or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert view["deadLettered"] == "corrupt-item"
    assert view["corrupt"] == ["order record: Deadline 'not a time' is not a time"]
    assert view["events"]["In Stock"]["status"] == "passed"
    assert "sent to the failure queue" not in "\n".join(proc.lines)
    _post(base, "after", "Account Check", "passed")
    _post(base, "after", "In Stock", "failed")
    assert wait_until_final(base, "after")["status"] == "rejected"


def test_invalid_rule_pattern_stops_start_up_with_aws_reason(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        '{"version": "2.0", "app_name": "bad", "stages": {"local": {}}}'
    )
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\n"
        "app = Chalice(app_name='bad')\n"
        "@app.on_cw_event({'detail': {'x': 5}})\n"
        "def handler(event):\n"
        "    pass\n"
    )
    proc = RuntimeProcess("--project-dir", str(tmp_path))
    assert proc.process.wait(timeout=60) == 2
    proc.wait_for(
        r"local runtime did not start: rule 'handler': "
        r'Event pattern is not valid\. Reason: "x" must be an object or an array'
    )


def test_order_missing_a_check_times_out_through_the_schedule() -> None:
    proc = RuntimeProcess("--env", "ORDER_TIMEOUT_SECONDS=2", "--schedule-every", "1")
    try:
        base = proc.wait_for(r"serving (http://\S+) ").group(1)
        _post(base, "slow", "Account Check", "passed")
        view = wait_until_final(base, "slow", timeout=30)
        assert view["status"] == "timed-out", "\n".join(proc.lines)
        assert view["problem"]["missing"] == ["In Stock"]
        proc.wait_for(r"schedule → timeout_sweep: \{'due': 1, 'timedOut': 1")
    finally:
        assert proc.stop() == 0
