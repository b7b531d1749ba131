"""Writes what a handler received to the journal table its function's environment names."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import boto3


def write(handler: str, event: dict[str, Any], context: Any) -> None:
    table = os.environ["LEDGER_TABLE"]  # lambda_functions.<name>.environment_variables
    seen = {
        "function_name": context.function_name,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    boto3.client("dynamodb").put_item(
        TableName=table,
        Item={
            "entry": {"S": str(uuid.uuid4())},
            "handler": {"S": handler},
            "event": {"S": json.dumps(event)},
            "context": {"S": json.dumps(seen)},
            "shift": {"S": os.environ.get("SHIFT", "")},
        },
    )
