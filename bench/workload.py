"""The orders the benchmarks use: the same, deterministic data for both designs.

* :func:`new_orders`: orders processed during a run. Every check of an order reports once;
  every tenth order has its last check failed (with a reason), the others all pass.
* :func:`prefill_items`: the orders already in the table, finished: their source-event
  items and, for this project, the order record the app writes (outcome, invoice or
  problem). The reference design stores only the source events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from chalicelib import table
from chalicelib.domain import (
    FAILED,
    PASSED,
    CheckResult,
    Order,
    format_time,
    invoice_outcome,
    problem_outcome,
)
from chalicelib.store import result_item

START = datetime(2025, 1, 1, tzinfo=UTC)
FAILURE_REASON = "out of stock"
_serializer = TypeSerializer()


@dataclass(frozen=True)
class PlannedOrder:
    order_id: str
    results: tuple[CheckResult, ...]

    @property
    def approved(self) -> bool:
        return all(r.status == PASSED for r in self.results)


def planned_order(order_id: str, number: int, checks: tuple[str, ...]) -> PlannedOrder:
    moment = START + timedelta(seconds=number)
    fails = number % 10 == 9
    results = tuple(
        CheckResult(
            name=name,
            status=FAILED if fails and position == len(checks) - 1 else PASSED,
            occurred_at=moment + timedelta(milliseconds=position),
            reason=FAILURE_REASON if fails and position == len(checks) - 1 else None,
            recorded_at=moment + timedelta(milliseconds=position, microseconds=1),
        )
        for position, name in enumerate(checks)
    )
    return PlannedOrder(order_id, results)


def new_orders(count: int, checks: tuple[str, ...], prefix: str = "new") -> list[PlannedOrder]:
    return [planned_order(f"{prefix}-{n:06d}", n, checks) for n in range(count)]


def to_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def order_record(planned: PlannedOrder, required: tuple[str, ...]) -> dict[str, Any]:
    """The order record of a finished order, as the app leaves it."""
    order = Order(planned.order_id, {r.name: r for r in planned.results})
    decided = max(r.occurred_at for r in planned.results) + timedelta(seconds=1)
    item: dict[str, Any] = {
        table.PARTITION_KEY: planned.order_id,
        table.SORT_KEY: table.ORDER_RECORD,
        table.FIRST_SEEN_AT: format_time(planned.results[0].occurred_at),
        table.OUTCOME_AT: format_time(decided),
    }
    if planned.approved:
        outcome = invoice_outcome(order, decided)
        item[table.INVOICE] = json.dumps(outcome.invoice, sort_keys=True)
        item[table.NOTIFIED_AT] = format_time(decided)
    else:
        outcome = problem_outcome(order, required, decided, "rejected")
        item[table.PROBLEM] = json.dumps(outcome.problem, sort_keys=True)
    item[table.OUTCOME] = outcome.kind
    return item


def prefill_items(
    count: int, checks: tuple[str, ...], with_order_record: bool
) -> Iterator[dict[str, Any]]:
    """DynamoDB-JSON items of ``count`` finished orders."""
    for number in range(count):
        planned = planned_order(f"old-{number:07d}", number, checks)
        for result in planned.results:
            yield to_dynamodb(result_item(planned.order_id, result))
        if with_order_record:
            yield to_dynamodb(order_record(planned, checks))


def fill(client: Any, table_name: str, items: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``items`` with BatchWriteItem (25 a call); return them."""
    written: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == 25:
            _write_batch(client, table_name, batch)
            written.extend(batch)
            batch = []
    if batch:
        _write_batch(client, table_name, batch)
        written.extend(batch)
    return written


def _write_batch(client: Any, table_name: str, batch: list[dict[str, Any]]) -> None:
    request: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in batch]}
    while request:
        response = client.batch_write_item(RequestItems=request)
        request = response.get("UnprocessedItems") or {}
