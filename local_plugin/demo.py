"""This app's demo: the reference scenario, driven through the HTTP API.

``python -m local demo`` starts the runtime and calls :func:`demo` with the runtime's URL
(the plug-in hook of :mod:`local.plugins`). It sends the checks of four orders: one that
passes both, one that fails a check, one whose results are posted twice, and one whose
results arrive out of order. It waits until each order is final and prints what each
became.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

T1 = "2026-01-01T10:00:00Z"
T2 = "2026-01-01T10:05:00Z"


@dataclass(frozen=True)
class Step:
    order_id: str
    body: dict[str, Any]
    note: str


SCENARIO = [
    Step("demo-1", {"name": "Account Check", "status": "passed"}, "both checks pass"),
    Step("demo-1", {"name": "In Stock", "status": "passed"}, "both checks pass"),
    Step("demo-2", {"name": "Account Check", "status": "passed"}, "a check fails"),
    Step(
        "demo-2",
        {"name": "In Stock", "status": "failed", "reason": "out of stock"},
        "a check fails",
    ),
    Step("demo-3", {"name": "Account Check", "status": "passed", "occurredAt": T1}, "duplicates"),
    Step("demo-3", {"name": "Account Check", "status": "passed", "occurredAt": T1}, "duplicates"),
    Step("demo-3", {"name": "In Stock", "status": "passed", "occurredAt": T1}, "duplicates"),
    Step("demo-3", {"name": "In Stock", "status": "passed", "occurredAt": T1}, "duplicates"),
    Step(
        "demo-4",
        {"name": "In Stock", "status": "failed", "reason": "recount", "occurredAt": T2},
        "out of order",
    ),
    Step("demo-4", {"name": "In Stock", "status": "passed", "occurredAt": T1}, "out of order"),
    Step("demo-4", {"name": "Account Check", "status": "passed", "occurredAt": T1}, "out of order"),
]


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One HTTP call; returns (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_until_final(base: str, order_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the order until its outcome is recorded (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        status, view = call("GET", f"{base}/orders/{order_id}")
        if status == 200 and "decidedAt" in view or time.monotonic() > deadline:
            return dict(view or {})
        time.sleep(0.1)


def summary_table(views: dict[str, dict[str, Any]], notes: dict[str, str]) -> str:
    lines = [
        "| order | scenario | status | invoice | problem |",
        "|---|---|---|---|---|",
    ]
    for order_id, view in views.items():
        invoice = (view.get("invoice") or {}).get("invoiceId", "")
        problem = view.get("problem") or {}
        failed = ", ".join(f"{f['check']}: {f['reason']}" for f in problem.get("failed", []))
        lines.append(
            f"| {order_id} | {notes[order_id]} | {view.get('status')} | {invoice} | {failed} |"
        )
    return "\n".join(lines)


def demo(url: str) -> int:
    """Run the scenario against the runtime at ``url``; 0 when every order is final."""
    for step in SCENARIO:
        status, body = call("POST", f"{url}/orders/{step.order_id}/events", step.body)
        print(
            f"[order {step.order_id}] POST {step.body['name']}={step.body['status']} "
            f"→ {status} {body.get('state')}",
            flush=True,
        )
    notes = {step.order_id: step.note for step in SCENARIO}
    views = {order_id: wait_until_final(url, order_id) for order_id in notes}
    print()
    print(summary_table(views, notes), flush=True)
    return 0 if all("decidedAt" in v for v in views.values()) else 1
