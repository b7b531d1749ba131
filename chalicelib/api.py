"""The HTTP API's work: record a source's result, declare what an order waits for, show
an order.

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
from chalicelib.domain import CheckResult, Declaration, Order, format_time, is_late
from chalicelib.errors import classify
from chalicelib.observability import logger
from chalicelib.policy import CompletionPolicy, deadline_of
from chalicelib.store import EventStore, MalformedItem
from chalicelib.validation import (
    ValidationError,
    parse_declaration_body,
    parse_result_body,
    validate_order_id,
)

Reply = tuple[int, dict[str, Any]]


def result_view(result: CheckResult, late: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"status": result.status, "occurredAt": format_time(result.occurred_at)}
    if result.reason:
        view["reason"] = result.reason
    if late:
        view["late"] = True
    return view


def declaration_view(declaration: Declaration, order: Order | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"checks": list(declaration.checks)}
    if declaration.deadline is not None:
        view["deadline"] = format_time(declaration.deadline)
    if declaration.declared_at is not None:
        view["declaredAt"] = format_time(declaration.declared_at)
        outcome = order.outcome if order is not None else None
        if outcome is not None and declaration.declared_at > outcome.at:
            # Stored in the instant the order was decided: shown, never applied.
            view["late"] = True
    return view


def order_view(order: Order, policy: CompletionPolicy | tuple[str, ...]) -> dict[str, Any]:
    """The aggregated view of ``GET /orders/{id}``: the results, what the order waits for
    (``expected``), the policy's evaluation per group (``policy``) and what is missing."""
    if isinstance(policy, tuple):
        policy = CompletionPolicy.default(policy)
    evaluation = policy.evaluate(order)
    view: dict[str, Any] = {
        "orderId": order.order_id,
        "status": order.outcome.kind if order.outcome else evaluation.status,
        "events": {
            name: result_view(result, is_late(result, order.outcome))
            for name, result in sorted(order.results.items())
        },
        "expected": evaluation.expected,
        "policy": {g.group.name: g.view() for g in evaluation.groups},
        "missing": evaluation.missing,
    }
    if order.declaration is not None:
        view["declaration"] = declaration_view(order.declaration, order)
    if evaluation.awaiting_declaration:
        view["awaitingDeclaration"] = True
    if order.outcome is not None:
        view["decidedAt"] = format_time(order.outcome.at)
        if order.outcome.invoice:
            view["invoice"] = order.outcome.invoice
        if order.outcome.problem:
            view["problem"] = order.outcome.problem
    elif (deadline := deadline_of(order)) is not None:
        view["deadline"] = format_time(deadline)
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
                raw_body, self._settings.known_checks, self._now()
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
        return 200, order_view(order, self._settings.policy)

    def declare(self, order_id: str, raw_body: bytes | None) -> Reply:
        """``PUT /orders/{order_id}``: 201 declared, 200 the same declaration is stored,
        409 another declaration is stored or the order is decided, 4xx refused."""
        try:
            validate_order_id(order_id)
            declaration = parse_declaration_body(raw_body, self._settings.known_checks, self._now())
        except ValidationError as err:
            logger.info(
                "refused a declaration", extra={"order_id": order_id[:64], "error": err.message}
            )
            return err.status_code, err.to_body()
        try:
            return self._declare(order_id, declaration)
        except (ClientError, BotoCoreError) as err:
            failure = classify(err, self._settings.table_name)
            log = logger.warning if failure.retryable else logger.error
            log("could not store a declaration", extra={"order_id": order_id, **failure.log})
            return failure.reply

    def _declare(self, order_id: str, declaration: Declaration) -> Reply:
        order = self._store.load_order(order_id)
        if order is not None and order.outcome is not None:
            return self._conflict(
                order_id,
                f"order '{order_id}' is already {order.outcome.kind}; a declaration can no "
                "longer change it",
                order,
            )
        if order is not None and order.record_corrupt:
            # Whether it is decided, or what it waits for, cannot be read: change nothing.
            return self._conflict(
                order_id, "the order's stored items cannot be read: " + "; ".join(order.problems)
            )
        try:
            created, stored = (
                (False, order.declaration)
                if order is not None and order.declaration is not None
                else self._store.declare(order_id, declaration)
            )
        except MalformedItem as err:
            return self._conflict(order_id, f"a declaration is stored but unreadable: {err}")
        body = {"orderId": order_id, "declaration": declaration_view(stored)}
        if created:
            logger.info("order declared", extra={"order_id": order_id})
            return 201, {**body, "state": "declared"}
        if stored.same_as(declaration):
            return 200, {**body, "state": "duplicate"}
        return self._conflict(
            order_id,
            f"order '{order_id}' is already declared with other checks or deadline",
            order,
            stored,
        )

    def _conflict(
        self,
        order_id: str,
        message: str,
        order: Order | None = None,
        stored: Declaration | None = None,
    ) -> Reply:
        logger.info("declaration refused: conflict", extra={"order_id": order_id, "error": message})
        body: dict[str, Any] = {"error": message, "orderId": order_id}
        if order is not None and order.outcome is not None:
            body["status"] = order.outcome.kind
        if stored is not None:
            body["declaration"] = declaration_view(stored)
        return 409, body
