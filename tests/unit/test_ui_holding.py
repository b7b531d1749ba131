"""Which queues the web UI lists as holding failures (local/ui/holding.py), and how this
app's plug-in puts an order on its board (local_plugin/views.py)."""

from __future__ import annotations

from typing import Any

from local.template import (
    AsyncSettings,
    FunctionSettings,
    ProjectSettings,
    QueueSpec,
    StreamSettings,
    TargetSettings,
)
from local.ui.holding import holding_queues
from local_plugin.views import card


def test_every_failure_destination_and_dead_letter_queue_is_listed_once() -> None:
    functions = {
        "worker": FunctionSettings(
            "worker",
            invoke=AsyncSettings(on_failure_queue="WorkerFailed", dead_letter_queue="WorkerDlq"),
            target=TargetSettings(dead_letter_queue="RuleDlq"),
        ),
        "other": FunctionSettings("other", invoke=AsyncSettings(on_failure_queue="WorkerFailed")),
    }
    streams = {
        "reader": StreamSettings("reader", "arn", 10, 0, "LATEST", on_failure_queue="Failures")
    }
    queues = {
        "Failures": QueueSpec("Failures", "Failures", redrive_to="FailuresDlq"),
        "FailuresDlq": QueueSpec("FailuresDlq", "failures-dlq"),
        "Plain": QueueSpec("Plain", "plain"),
    }
    settings = ProjectSettings({}, functions, streams, queues, {})
    listed = [(h.name, h.kind, h.owner) for h in holding_queues(settings)]
    assert listed == [
        ("Failures", "stream-on-failure", "reader"),
        ("WorkerFailed", "async-on-failure", "worker"),
        ("WorkerDlq", "async-dlq", "worker"),
        ("RuleDlq", "rule-dlq", "worker"),
        ("failures-dlq", "queue-dlq", "Failures"),
    ]


NOW = "2026-01-31T12:01:00Z"


def _story(**overrides: Any) -> dict[str, Any]:
    story: dict[str, Any] = {
        "orderId": "7",
        "status": "pending",
        "requiredChecks": ["Account Check", "In Stock"],
        "deadLetter": None,
        "waitingFor": [{"step": "check", "detail": "In Stock"}],
        "timeline": [
            {
                "at": "2026-01-31T12:00:00Z",
                "event": "check-result",
                "check": "Account Check",
                "status": "passed",
            },
            {"at": "2026-01-31T12:05:00Z", "event": "deadline", "summary": "deadline ahead"},
        ],
    }
    return {**story, **overrides}


def test_a_card_shows_each_required_check_and_the_latest_past_moment() -> None:
    shown = card(_story(), NOW)
    assert (shown["column"], shown["at"], shown["note"]) == (
        "pending",
        "2026-01-31T12:00:00Z",
        "check: In Stock",
    )
    assert shown["badges"] == [
        {"label": "Account Check", "state": "passed"},
        {"label": "In Stock", "state": "missing"},
    ]


def test_a_dead_lettered_or_unreadable_order_is_in_the_parked_column() -> None:
    assert card(_story(deadLetter={"fault": "corrupt-item"}), NOW)["column"] == "parked"
    assert card(_story(status="unknown"), NOW)["column"] == "parked"
    assert card(_story(status="timed-out"), NOW)["column"] == "timed-out"
