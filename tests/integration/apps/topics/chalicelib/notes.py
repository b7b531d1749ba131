"""Keeps what a handler received in the journal table its function's environment names."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


def keep(handler: str, event: dict[str, Any], context: Any, subject: str | None) -> None:
    boto3.client("dynamodb").put_item(
        TableName=os.environ["NOTES_TABLE"],
        Item={
            "entry": {"S": context.aws_request_id},
            "handler": {"S": handler},
            "event": {"S": json.dumps(event)},
            "context": {
                "S": json.dumps(
                    {
                        "function_name": context.function_name,
                        "invoked_function_arn": context.invoked_function_arn,
                        "memory_limit_in_mb": context.memory_limit_in_mb,
                        "remaining_ms": context.get_remaining_time_in_millis(),
                        "subject": subject,
                    }
                )
            },
            "shift": {"S": os.environ.get("DESK", "")},
        },
    )
