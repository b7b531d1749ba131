"""Chalice wiring only: each handler hands its input to ``chalicelib`` and returns."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import (
    Chalice,
    CloudWatchEvent,
    DynamoDBEvent,
    IAMAuthorizer,
    Rate,
    Response,
    SQSEvent,
)

from chalicelib import rules, services
from chalicelib.api import OrdersApi
from chalicelib.config import get_settings
from chalicelib.errors import classify
from chalicelib.observability import flushing_metrics, logger
from chalicelib.outcomes import summary

app = Chalice(app_name="event-aggregator")
settings = get_settings()
authorizer: IAMAuthorizer | None = IAMAuthorizer() if settings.api_auth == "iam" else None


def _reply(status_and_body: tuple[int, dict[str, Any]]) -> Response:
    status, body = status_and_body
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _answer(call: Callable[[OrdersApi], tuple[int, dict[str, Any]]]) -> Response:
    """The API's reply, or a JSON error when its AWS client cannot even be made
    (e.g. no region): never Chalice's 500 with a traceback."""
    try:
        api = services.orders_api()
    except (BotoCoreError, ClientError) as err:
        failure = classify(err, settings.table_name)
        logger.error("the API has no usable AWS client", extra=failure.log)
        return _reply(failure.reply)
    return _reply(call(api))


def _raw_body() -> bytes | None:
    """The request body as bytes, as the API's validation reads it."""
    request = app.current_request
    body = request.raw_body if request is not None else None
    return body.encode() if isinstance(body, str) else body


@app.route(
    "/orders/{order_id}/events",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=authorizer,
)
def record_event(order_id: str) -> Response:
    raw = _raw_body()
    return _answer(lambda api: api.post_result(order_id, raw))


@app.route(
    "/orders/{order_id}",
    methods=["PUT"],
    content_types=["application/json"],
    authorizer=authorizer,
)
def declare_order(order_id: str) -> Response:
    raw = _raw_body()
    return _answer(lambda api: api.declare(order_id, raw))


@app.route("/orders/{order_id}", methods=["GET"], authorizer=authorizer)
def get_order(order_id: str) -> Response:
    return _answer(lambda api: api.get_order(order_id))


@app.on_dynamodb_record(
    stream_arn=settings.stream_arn,
    batch_size=100,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=1,
    name="aggregator",
)
def aggregate(event: DynamoDBEvent) -> dict[str, Any]:
    with flushing_metrics():
        return services.aggregator().handle(event.to_dict()["Records"])


@app.on_sqs_message(queue=settings.stream_failure_queue, batch_size=10, name="stream_recovery")
def recover_stream(event: SQSEvent) -> dict[str, Any]:
    with flushing_metrics():
        return services.stream_recovery().handle(event.to_dict()["Records"])


def _event_context(event: CloudWatchEvent) -> AbstractContextManager[None]:
    """Every log line of a target carries the order id and the EventBridge event id, so
    one order can be followed across functions (and duplicate deliveries told apart)."""
    return logger.append_context_keys(order_id=event.detail["OrderID"], event_id=event.event_id)


@app.on_cw_event(rules.invoice_pattern(settings), name="invoice_processing")
def process_invoice(event: CloudWatchEvent) -> dict[str, Any]:
    with flushing_metrics(), _event_context(event):
        return summary(services.outcomes().invoice(event.detail["OrderID"]))


@app.on_cw_event(rules.problem_pattern(settings), name="problem_handler")
def handle_problem(event: CloudWatchEvent) -> dict[str, Any]:
    with flushing_metrics(), _event_context(event):
        return summary(services.outcomes().problem(event.detail["OrderID"]))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="timeout_sweep")
def sweep_timeouts(event: Any) -> dict[str, int]:
    with flushing_metrics():
        counts = services.timeout_sweep().run()
        logger.info("timeout sweep", extra=counts)
        return counts
