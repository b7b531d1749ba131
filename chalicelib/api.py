"""The HTTP API's work: record a source's result, show an order.

Each function returns ``(status_code, body)``; ``app.py`` turns that into a response.

Example::

    api = OrdersApi(store, settings)
    api.post_result("7", b'{"name": "In Stock", "status": "passed"}')
    # (201, {"orderId": "7", "name": "In Stock", "applied": True, "state": "recorded", …})
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import clock
from chalicelib.config import Settings
from chalicelib.domain import CheckResult, Order, format_time, is_late, missing_checks, order_status
from chalicelib.errors import classify
from chalicelib.observability import logger
from chalicelib.store import EventStore
from chalicelib.validation import ValidationError, parse_result_body, validate_order_id

Reply = tuple[int, dict[str, Any]]
UNAVAILABLE: Reply = (503, {"error": "the event store is unavailable; retry the request"})


def result_view(result: CheckResult, late: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"status": result.status, "occurredAt": format_time(result.occurred_at)}
    if result.reason:
        view["reason"] = result.reason
    if late:
        view["late"] = True
    return view


def order_view(order: Order, required: tuple[str, ...]) -> dict[str, Any]:
    """The aggregated view of ``GET /orders/{id}``."""
    view: dict[str, Any] = {
        "orderId": order.order_id,
        "status": order_status(order, required),
        "events": {
            name: result_view(result, is_late(result, order.outcome))
            for name, result in sorted(order.results.items())
        },
        "missing": missing_checks(order, required),
    }
    if order.outcome is not None:
        view["decidedAt"] = format_time(order.outcome.at)
        if order.outcome.invoice:
            view["invoice"] = order.outcome.invoice
        if order.outcome.problem:
            view["problem"] = order.outcome.problem
    elif order.deadline is not None:
        view["deadline"] = format_time(order.deadline)
    if order.outcome is not None and order.outcome.invoice:
        view["notified"] = order.notified
    if order.problems:
        # Readable parts above; what could not be read is named, never a 500.
        view["corrupt"] = list(order.problems)
    if order.parked is not None:
        view["deadLettered"] = order.parked
    return view


class OrdersApi:
    def __init__(
        self, store: EventStore, settings: Settings, now: Callable[[], datetime] | None = None
    ) -> None:
        self._store = store
        self._settings = settings
        self._now = now or clock.now

    def post_result(self, order_id: str, raw_body: bytes | None) -> Reply:
        """``POST /orders/{order_id}/events``: 201 stored, 200 not applied, 4xx refused."""
        try:
            validate_order_id(order_id)
            result, explicit_time = parse_result_body(
                raw_body, self._settings.required_checks, self._now()
            )
        except ValidationError as err:
            logger.info("refused a result", extra={"order_id": order_id[:64], "error": err.message})
            return err.status_code, err.to_body()
        try:
            response = self._store.record_result(order_id, result, explicit_time)
        except (ClientError, BotoCoreError) as err:
            failure = classify(err, self._settings.table_name)
            log = logger.warning if failure.retryable else logger.error
            log("could not record a result", extra={"order_id": order_id, **failure.log})
            return failure.reply
        logger.info(
            "result " + response.state,
            extra={"order_id": order_id, "check": result.name, "status": result.status},
        )
        body: dict[str, Any] = {
            "orderId": order_id,
            "name": result.name,
            "applied": response.applied,
            "state": response.state,
            "stored": result_view(response.stored),
        }
        return (201 if response.applied else 200), body

    def get_order(self, order_id: str) -> Reply:
        """``GET /orders/{order_id}``: the aggregated view, 404 if nothing is stored."""
        try:
            validate_order_id(order_id)
        except ValidationError as err:
            return err.status_code, err.to_body()
        try:
            order = self._store.load_order(order_id)
        except (ClientError, BotoCoreError) as err:
            failure = classify(err, self._settings.table_name)
            log = logger.warning if failure.retryable else logger.error
            log("could not read an order", extra={"order_id": order_id, **failure.log})
            return failure.reply
        if order is None:
            return 404, {"error": f"no events recorded for order '{order_id}'"}
        return 200, order_view(order, self._settings.required_checks)
