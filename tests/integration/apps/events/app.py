"""A small Chalice app whose EventBridge and schedule handlers show how Lambda runs them.

``POST /publish`` hands its body's ``Entries`` to PutEvents and answers what EventBridge
answered; the handlers print one JSON line per invocation, which the tests read.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError
from chalice.app import Chalice, Rate

app = Chalice(app_name="event-rules")


def _say(handler: str, event: Any, **extra: Any) -> None:
    context = event.context
    line = json.dumps(
        {
            "handler": handler,
            "event": event.to_dict(),
            "request": context.aws_request_id,
            "function_name": context.function_name,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "colour": os.environ.get("COLOUR"),
            **extra,
        }
    )
    sys.stdout.write(f"HANDLER {line}\n")
    sys.stdout.flush()


@app.route("/publish", methods=["POST"])
def publish() -> dict[str, Any]:
    body = app.current_request.json_body if app.current_request else {}
    try:
        answer = boto3.client("events").put_events(Entries=body["Entries"])
    except ClientError as err:
        return {"error": err.response["Error"]["Code"], "message": str(err)}
    return {"FailedEntryCount": answer["FailedEntryCount"], "Entries": answer["Entries"]}


@app.on_cw_event({"source": ["tests"], "detail-type": ["greeting"]}, name="greeter")
def greeter(event: Any) -> None:
    _say("greeter", event)


@app.on_cw_event({"source": ["tests"], "detail-type": ["flaky"]}, name="flaky")
def flaky(event: Any) -> None:
    _say("flaky", event)
    raise RuntimeError("flaky target")


@app.on_cw_event({"source": ["tests"], "detail-type": ["flaky"]}, name="dead_lettered")
def dead_lettered(event: Any) -> None:
    _say("dead_lettered", event)
    raise RuntimeError("dead-lettered target")


@app.on_cw_event({"source": ["tests"], "detail-type": ["greeting"]}, name="switched_off")
def switched_off(event: Any) -> None:
    _say("switched_off", event)


@app.on_cw_event({"source": ["tests"], "detail-type": ["greeting"]}, name="other_bus")
def other_bus(event: Any) -> None:
    """The greeter's pattern, on another bus (the merge template's EventBusName)."""
    _say("other_bus", event)


@app.on_cw_event({"source": ["tests"], "detail-type": ["throttled"]}, name="throttled")
def throttled(event: Any) -> None:
    """Reserved concurrency 0: never runs; the rule target's RetryPolicy, then its DLQ."""
    _say("throttled", event)


@app.on_cw_event({"source": ["tests"], "detail-type": ["throttled"]}, name="throttled_by_age")
def throttled_by_age(event: Any) -> None:
    """Reserved concurrency 0, a short MaximumEventAgeInSeconds and no DLQ: dropped."""
    _say("throttled_by_age", event)


@app.schedule(Rate(1, unit=Rate.HOURS), name="ticker")
def ticker(event: Any) -> None:
    _say("ticker", event)
