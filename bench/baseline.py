"""The reference design's stream aggregator, rebuilt here for comparison.

Written for these benchmarks from the reference design's description (the AWS "event
aggregator" pattern sample), not from its code. Per invocation it:

1. takes the *first* record of the batch and nothing else;
2. finds that order's events with a Scan of the whole table, filtered on the order id
   (every page, so it also finds orders beyond the first 1 MB);
3. builds a detail with one key per check that has reported (its status);
4. publishes it with one PutEvents call of one entry.

Its EventBridge rule is :func:`chalicelib.rules.all_checks_present_pattern`: the target
runs once every check has reported. Only with a batch size of 1 does it see every
record; with a larger batch the other records of the batch are never aggregated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib import table
from chalicelib.config import Settings


class ReferenceAggregator:
    """One Scan and one PutEvents call per invocation."""

    def __init__(self, dynamodb: Any, events: Any, table_name: str, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._events = events
        self._table = table_name
        self._settings = settings

    def handle(self, event: Mapping[str, Any], context: Any = None) -> None:
        records = event.get("Records") or []
        if not records:
            return
        keys = records[0]["dynamodb"]["Keys"]
        order_id = keys[table.PARTITION_KEY]["S"]
        detail: dict[str, Any] = {"OrderID": order_id}
        for item in self._items_of(order_id):
            status = item.get(table.STATUS, {}).get("S")
            if status is not None:
                detail[item[table.SORT_KEY]["S"]] = status
        self._events.put_events(
            Entries=[
                {
                    "Source": self._settings.event_source,
                    "DetailType": self._settings.detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self._settings.event_bus_name,
                }
            ]
        )

    def _items_of(self, order_id: str) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#order = :order",
            "ExpressionAttributeNames": {"#order": table.PARTITION_KEY},
            "ExpressionAttributeValues": {":order": {"S": order_id}},
        }
        found: list[dict[str, Any]] = []
        while True:
            page = self._dynamodb.scan(**request)
            found.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return found
            request["ExclusiveStartKey"] = last
