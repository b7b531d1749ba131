"""Adds what a handler received to the journal table its function's environment names."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


def add(handler: str, event: dict[str, Any], context: Any, pages: list[str]) -> None:
    boto3.client("dynamodb").put_item(
        TableName=os.environ["TALLY_TABLE"],
        Item={
            "entry": {"S": context.aws_request_id},
            "handler": {"S": handler},
            "event": {"S": json.dumps(event)},
            "context": {
                "S": json.dumps(
                    {
                        "function_name": context.function_name,
                        "memory_limit_in_mb": context.memory_limit_in_mb,
                        "remaining_ms": context.get_remaining_time_in_millis(),
                        "pages": pages,
                    }
                )
            },
            "shift": {"S": os.environ.get("SITE", "")},
        },
    )
