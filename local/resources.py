"""The AWS resources the app expects, created on the local endpoint.

The events table comes from :mod:`chalicelib.table`, the same definition the tests and
the deployment template use.
"""

from __future__ import annotations

from typing import Any

from chalicelib import table


def ensure_events_table(dynamodb: Any, table_name: str) -> str:
    """Create the events table unless it exists; return its stream ARN."""
    existing = dynamodb.list_tables().get("TableNames", [])
    if table_name not in existing:
        dynamodb.create_table(**table.create_table_request(table_name))
        dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    description = dynamodb.describe_table(TableName=table_name)["Table"]
    arn: str = description["LatestStreamArn"]
    return arn
