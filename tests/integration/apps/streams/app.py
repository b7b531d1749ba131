"""A small Chalice app whose stream handlers show how Lambda delivers stream batches.

Each handler prints one JSON line per invocation (the local runtime's output is what the
integration tests read). Every handler reads its own table, declared in the merge
template with the trigger's settings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from chalice.app import Chalice

app = Chalice(app_name="stream-rules")
REGION = "us-east-1"
ACCOUNT = "123456789012"


def _stream(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/local"


def _say(handler: str, event: Any, context: Any, **extra: Any) -> None:
    records = [
        {
            "sk": record.keys.get("sk", {}).get("S"),
            "v": (record.new_image or {}).get("v", {}).get("N"),
            "seq": record.sequence_number,
        }
        for record in event
    ]
    line = json.dumps(
        {
            "handler": handler,
            "records": records,
            "request": context.aws_request_id,
            "shape": os.environ.get("SHAPE"),
            **extra,
        }
    )
    sys.stdout.write(f"HANDLER {line}\n")  # one write: lines of other threads stay whole
    sys.stdout.flush()


@app.on_dynamodb_record(stream_arn=_stream("ordered"), batch_size=5, name="ordered")
def ordered(event: Any) -> None:
    # Says when it starts and ends each batch, holding it a while in between.
    context = event.context
    _say("ordered", event, context, phase="start")
    time.sleep(0.3)
    _say("ordered", event, context, phase="end")


@app.on_dynamodb_record(stream_arn=_stream("failing"), batch_size=10, name="failing")
def failing(event: Any) -> None:
    context = event.context
    _say("failing", event, context)
    if any(record.keys["sk"]["S"].startswith("bad") for record in event):
        raise RuntimeError("cannot handle a bad item")


@app.on_dynamodb_record(stream_arn=_stream("aged"), batch_size=10, name="aged")
def aged(event: Any) -> None:
    context = event.context
    _say("aged", event, context)
    raise RuntimeError("always fails")


@app.on_dynamodb_record(stream_arn=_stream("unreported"), batch_size=10, name="unreported")
def unreported(event: Any) -> dict[str, Any]:
    # Reports every record as failed; the mapping has no ReportBatchItemFailures.
    context = event.context
    _say("unreported", event, context)
    return {"batchItemFailures": [{"itemIdentifier": r.sequence_number} for r in event]}


@app.on_dynamodb_record(stream_arn=_stream("slow"), batch_size=10, name="slow")
def slow(event: Any) -> None:
    context = event.context
    _say("slow", event, context, remaining_ms=context.get_remaining_time_in_millis())
    if any(record.keys["sk"]["S"].startswith("sleepy") for record in event):
        time.sleep(3)


@app.on_dynamodb_record(
    stream_arn=_stream("latest"), batch_size=10, name="latest", starting_position="LATEST"
)
def latest(event: Any) -> None:
    context = event.context
    _say("latest", event, context)


@app.on_dynamodb_record(stream_arn=_stream("env"), batch_size=10, name="env")
def env(event: Any) -> None:
    context = event.context
    _say(
        "env",
        event,
        context,
        colour=os.environ.get("COLOUR"),
        function_name=context.function_name,
        arn=context.invoked_function_arn,
        memory=context.memory_limit_in_mb,
        remaining_ms=context.get_remaining_time_in_millis(),
    )
