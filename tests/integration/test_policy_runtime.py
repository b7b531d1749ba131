"""Completion rules as data (issue 14) through the local runtime: a real process, real
HTTP on loopback, the schedule running the timeout sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from local_plugin.demo import call, wait_until_final
from tests.integration.test_local_runtime import RuntimeProcess


def test_declared_orders_are_decided_by_their_declaration_over_http() -> None:
    proc = RuntimeProcess("--env", "OPTIONAL_CHECKS=Fraud Check", "--schedule-every", "1")
    try:
        base = proc.wait_for(r"serving (http://\S+) ").group(1)
        status, body = call("PUT", f"{base}/orders/one-check", {"checks": ["Account Check"]})
        assert status == 201, body
        call(
            "POST", f"{base}/orders/one-check/events", {"name": "Account Check", "status": "passed"}
        )
        view = wait_until_final(base, "one-check")
        assert view["status"] == "invoiced", "\n".join(proc.lines)
        assert view["expected"] == ["Account Check"]

        again = call("PUT", f"{base}/orders/one-check", {"checks": ["In Stock"]})
        assert again[0] == 409

        deadline = datetime.now(UTC) + timedelta(seconds=3)
        declaration = {"checks": ["Account Check", "Fraud Check"], "deadline": deadline.isoformat()}
        assert call("PUT", f"{base}/orders/waits", declaration)[0] == 201
        call("POST", f"{base}/orders/waits/events", {"name": "Account Check", "status": "passed"})
        view = wait_until_final(base, "waits", timeout=30)
        assert view["status"] == "timed-out", "\n".join(proc.lines)
        assert view["problem"]["groups"]["declared"]["missing"] == ["Fraud Check"]
    finally:
        assert proc.stop() == 0
