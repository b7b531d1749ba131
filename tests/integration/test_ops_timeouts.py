"""``python -m ops`` on an order that times out: a runtime with a 2 s timeout and a sweep
every second (its own process: the other module needs orders to stay pending)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.ops_support import post, run_ops, wait_for_view
from tests.integration.test_local_runtime import RuntimeProcess

Runtime = tuple[RuntimeProcess, str, str]


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    proc = RuntimeProcess("--env", "ORDER_TIMEOUT_SECONDS=2", "--schedule-every", "1")
    try:
        found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)")
        yield proc, found.group(1), found.group(2)
    finally:
        assert proc.stop() == 0


def test_a_timed_out_order_shows_what_never_arrived(runtime: Runtime) -> None:
    proc, base, endpoint = runtime
    post(base, "ops-slow", "Account Check", "passed")
    wait_for_view(base, "ops-slow", lambda v: v.get("status") == "timed-out")
    ran = run_ops("--endpoint", endpoint, "--json", "inspect", "ops-slow")
    assert ran.code == 0
    story = ran.json
    assert story["status"] == "timed-out"
    assert story["outcome"]["problem"]["missing"] == ["In Stock"]
    assert story["outcome"]["problem"]["reason"] == "timed-out"
    assert story["missing"] == ["In Stock"] and story["waitingFor"] == []
    assert [e["event"] for e in story["timeline"]] == ["check-result", "outcome"]
    text = run_ops("--endpoint", endpoint, "inspect", "ops-slow").stdout
    assert "timed-out: missing: In Stock" in text

    # Decided: out of the index, so `pending` no longer lists it.
    listing = run_ops("--endpoint", endpoint, "--json", "pending").json
    assert "ops-slow" not in [o["orderId"] for o in listing["orders"]]

    # Replayed as it stands: a timed-out event; the problem handler keeps the one outcome.
    ran = run_ops("--endpoint", endpoint, "replay", "ops-slow")
    assert (ran.code, ran.stdout) == (0, "order ops-slow: published [timed-out]: published\n")
    proc.wait_for(r"\[order ops-slow\] rule matched → problem_handler")
    after = run_ops("--endpoint", endpoint, "--json", "inspect", "ops-slow").json
    assert after["outcome"] == story["outcome"]
