"""Remembers what a handler received in the journal table its environment names."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


def remember(handler: str, event: dict[str, Any], context: Any, key: str) -> None:
    boto3.client("dynamodb").put_item(
        TableName=os.environ["ALBUM_TABLE"],
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
                        "key": key,
                    }
                )
            },
            "shift": {"S": os.environ.get("LENS", "")},
        },
    )
