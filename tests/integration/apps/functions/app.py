"""A small Chalice app of plain Lambda functions, as Chalice's docs write them.

It has its own ``chalicelib`` (``chalicelib.greetings``, which the project running it does
not have) and per-function environment variables (``.chalice/config.json``). The tests
invoke its functions through the local runtime's Lambda Invoke API.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import boto3
from chalice.app import Chalice
from chalicelib.greetings import greet  # type: ignore[import-not-found]  # the app's own

app = Chalice(app_name="plain-functions")
app.experimental_feature_flags.update(["WEBSOCKETS"])


def _context(context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "request": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


@app.lambda_function()
def hello(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print(f"saying hello to {event.get('name')}")
    return {
        "message": greet(event.get("name", "world")),
        "greeting": os.environ.get("GREETING"),
        "punctuation": os.environ.get("PUNCTUATION"),
        "context": _context(context),
    }


@app.lambda_function(name="echo")
def echo(event: Any, context: Any) -> Any:
    return event


@app.lambda_function()
def refuse(event: dict[str, Any], context: Any) -> None:
    sys.stdout.write(f"REFUSED {json.dumps(event)} {context.aws_request_id}\n")
    sys.stdout.flush()
    raise ValueError(f"cannot take order {event.get('order')}")


@app.lambda_function()
def nap(event: dict[str, Any], context: Any) -> str:
    time.sleep(float(event.get("seconds", 10)))
    return "rested"


@app.lambda_function()
def relay(event: dict[str, Any], context: Any) -> Any:
    """Invokes another function of the app, as apps do on AWS."""
    answer = boto3.client("lambda").invoke(
        FunctionName="plain-functions-local-hello", Payload=json.dumps(event).encode()
    )
    return json.loads(answer["Payload"].read())


@app.route("/greetings/{name}")
def greeting(name: str) -> dict[str, str]:
    return {"message": greet(name)}


@app.on_ws_message()
def message(event: Any) -> None:
    app.websocket_api.send(event.connection_id, event.body)
