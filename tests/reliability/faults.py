"""Faults at the boto3 boundary, a settable clock and ledgers of what the app did.

:class:`FaultInjector` hooks into one botocore client's event system (the app's own
clients, ``chalicelib.aws.dynamodb()`` / ``chalicelib.aws.events()``), so the app code runs
unchanged and sees exactly what AWS would hand it:

* ``fail(operation, times, code)`` raises the service's ``ClientError`` before the request
  is sent (what the caller sees once the SDK's own retries are used up);
* ``fail(..., after=True)`` lets the call go through and raises afterwards (the write
  happened, the caller saw an error: a timeout after commit);
* ``fail_sent(operation, times, code)`` answers at the HTTP layer with a 400 error, so
  botocore's retry logic sees it exactly as a throttled AWS response;
* ``fail_entries(times, when)`` makes ``PutEvents`` report chosen entries in
  ``FailedEntries`` while the others really reach the bus (all of them may fail).

Example::

    dynamodb = FaultInjector(app_aws.dynamodb())
    dynamodb.fail("Query", times=2, when=for_order("7"))
    events = FaultInjector(app_aws.events())
    events.fail_entries(times=1, when=entry_for_order("7"))
"""

from __future__ import annotations

import functools
import importlib
import io
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import botocore.retries.standard
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from chalice.test import Client
from moto import mock_aws

from chalicelib import aws as app_aws
from chalicelib import clock, services, table
from chalicelib.config import get_settings
from chalicelib.domain import Outcome
from chalicelib.observability import SERVICE
from chalicelib.outcomes import LogNotifier
from chalicelib.publisher import Publisher
from chalicelib.rules import stream_filter_pattern
from chalicelib.store import EventStore, to_python
from local.eventbridge import matches
from local.pipeline import AwsClients, Pipeline, resolve_stream_arn
from local.streams import StreamReader
from tests.helpers import ACCOUNT, ONE_LANE, REGION, TABLE, TEST_ENV, LogCollector, post_result

THROTTLED = "ProvisionedThroughputExceededException"
THROTTLING = "ThrottlingException"
Params = Mapping[str, Any]
Predicate = Callable[[Params], bool]

_ids = itertools.count()


@dataclass
class Fault:
    """``times`` failures (``None``: every call) of ``operation`` where ``when`` holds."""

    operation: str
    code: str
    times: int | None
    when: Predicate | None
    after: bool = False
    injected: int = 0

    def takes(self, operation: str, params: Params) -> bool:
        """Whether this call fails; counts it if so."""
        if operation != self.operation:
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        if self.when is not None and not self.when(params):
            return False
        self.injected += 1
        return True

    @property
    def spent(self) -> bool:
        return self.times is not None and self.injected >= self.times


@dataclass
class EntryFault:
    """``times`` failed ``PutEvents`` entries (``None``: every one) where ``when`` holds."""

    code: str
    times: int | None
    when: Predicate | None
    injected: int = 0

    def takes(self, entry: Params) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        if self.when is not None and not self.when(entry):
            return False
        self.injected += 1
        return True


class _Raw(io.BytesIO):
    """The raw body botocore reads an HTTP response from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


@dataclass
class FaultInjector:
    """Faults for one botocore client; see the module docstring."""

    client: Any
    faults: list[Fault] = field(default_factory=list)
    entry_faults: list[EntryFault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _hooks: list[tuple[str, Callable[..., Any], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._service = self.client.meta.service_model.service_id.hyphenize()
        tag = f"fault-injector-{next(_ids)}"
        for stage, handler in (
            ("before-parameter-build", self._before_build),
            ("before-call", self._before_call),
            ("after-call", self._after_call),
        ):
            name = f"{stage}.{self._service}"
            self.client.meta.events.register(name, handler, unique_id=f"{tag}-{stage}")
            self._hooks.append((name, handler, f"{tag}-{stage}"))

    # --- arming ----------------------------------------------------------------------

    def fail(
        self,
        operation: str,
        times: int | None = 1,
        code: str = THROTTLED,
        when: Predicate | None = None,
        after: bool = False,
    ) -> Fault:
        fault = Fault(operation, code, times, when, after)
        self.faults.append(fault)
        return fault

    def fail_entries(
        self, times: int | None = 1, when: Predicate | None = None, code: str = "InternalFailure"
    ) -> EntryFault:
        fault = EntryFault(code, times, when)
        self.entry_faults.append(fault)
        return fault

    def fail_sent(self, operation: str, times: int, code: str = THROTTLED) -> Fault:
        """Answer the HTTP request with a 400 ``code`` error: botocore retries it."""
        fault = Fault(operation, code, times, None)
        name = f"before-send.{self._service}.{operation}"
        unique = f"fault-injector-{next(_ids)}-send"

        def answer(request: Any, **_: Any) -> AWSResponse | None:
            if not fault.takes(operation, {}):
                return None
            # Every before-send handler runs, moto's too: point the request where moto
            # does not answer, so the throttled request really is not carried out.
            request.url = "https://fault-injected.invalid/"
            body = json.dumps({"__type": f"com.amazonaws#{code}", "message": "injected"})
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "x"}
            return AWSResponse(
                request.url, 400, HTTPHeaders.from_dict(headers), _Raw(body.encode())
            )

        self.client.meta.events.register_first(name, answer, unique_id=unique)
        self._hooks.append((name, answer, unique))
        return fault

    def clear(self) -> None:
        """Disarm every fault (hooks stay installed)."""
        self.faults.clear()
        self.entry_faults.clear()

    def close(self) -> None:
        for name, handler, unique in self._hooks:
            self.client.meta.events.unregister(name, handler, unique_id=unique)
        self._hooks.clear()

    # --- hooks -----------------------------------------------------------------------

    def _error(self, operation: str, code: str) -> Exception:
        response = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "injected"},
        }
        error: Exception = self.client.exceptions.from_code(code)(response, operation)
        return error

    def _before_build(self, params: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        operation = model.name
        self.calls[operation] += 1
        self.log.append((operation, dict(params)))
        for fault in self.faults:
            if fault.takes(operation, params):
                if fault.after:
                    context["injected_after"] = fault.code
                    return
                raise self._error(operation, fault.code)
        if operation == "PutEvents" and self.entry_faults:
            self._fail_some_entries(params, context)

    def _fail_some_entries(self, params: dict[str, Any], context: Any) -> None:
        entries = list(params["Entries"])
        failed: dict[int, str] = {}
        for index, entry in enumerate(entries):
            for fault in self.entry_faults:
                if fault.takes(entry):
                    failed[index] = fault.code
                    break
        if not failed:
            return
        context["injected_entries"] = (failed, len(entries))
        if len(failed) < len(entries):
            params["Entries"] = [e for i, e in enumerate(entries) if i not in failed]

    def _before_call(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        injected = context.get("injected_entries")
        if injected is None or len(injected[0]) < injected[1]:
            return None
        failed, total = injected
        parsed = {
            "FailedEntryCount": total,
            "Entries": [{"ErrorCode": failed[i], "ErrorMessage": "injected"} for i in range(total)],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        return AWSResponse("https://injected", 200, HTTPHeaders.from_dict({}), _Raw(b"")), parsed

    def _after_call(self, parsed: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        code = context.get("injected_after")
        if code is not None:
            raise self._error(model.name, code)
        injected = context.get("injected_entries")
        if injected is None or len(injected[0]) == injected[1]:
            return
        failed, total = injected
        real = iter(parsed.get("Entries", []))
        parsed["Entries"] = [
            {"ErrorCode": failed[i], "ErrorMessage": "injected"} if i in failed else next(real)
            for i in range(total)
        ]
        parsed["FailedEntryCount"] = parsed.get("FailedEntryCount", 0) + len(failed)


# --- predicates ----------------------------------------------------------------------


def order_of(params: Params) -> str | None:
    """The order a DynamoDB call is about (``Query``, ``PutItem``, ``UpdateItem``)."""
    for attribute in (
        (params.get("ExpressionAttributeValues") or {}).get(":pk"),
        (params.get("Item") or {}).get(table.PARTITION_KEY),
        (params.get("Key") or {}).get(table.PARTITION_KEY),
    ):
        if isinstance(attribute, Mapping) and isinstance(attribute.get("S"), str):
            return str(attribute["S"])
    return None


def for_order(*order_ids: str) -> Predicate:
    """DynamoDB calls about one of ``order_ids``."""
    return lambda params: order_of(params) in order_ids


def closing(*order_ids: str) -> Predicate:
    """The ``UpdateItem`` that records an order's outcome."""
    return lambda params: (
        order_of(params) in order_ids
        and "#outcome = :kind" in str(params.get("UpdateExpression", ""))
    )


def on_index(params: Params) -> bool:
    """Queries of the pending-orders index (the timeout sweep)."""
    return params.get("IndexName") == table.PENDING_INDEX


def on_buckets(params: Params) -> bool:
    """Queries of the deadline buckets' partitions (the timeout sweep)."""
    return bool((order_of(params) or "").startswith(table.DEADLINE_BUCKETS))


def entry_for_order(*order_ids: str) -> Predicate:
    """``PutEvents`` entries about one of ``order_ids``."""
    return lambda entry: json.loads(entry["Detail"]).get("OrderID") in order_ids


def entry_with_status(*statuses: str) -> Predicate:
    return lambda entry: json.loads(entry["Detail"]).get("status") in statuses


# --- the app's clients, clock and publisher ------------------------------------------


def app_dynamodb_faults() -> FaultInjector:
    """Faults on the app's DynamoDB client (call after the app was loaded)."""
    return FaultInjector(app_aws.dynamodb())


def app_events_faults() -> FaultInjector:
    return FaultInjector(app_aws.events())


class Clock:
    """``chalicelib.clock.now``, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Clock:
        monkeypatch.setattr(clock, "now", self)
        return self


_LOADERS: dict[str | None, Any] = {}
_create_loader = botocore.session.create_loader


def _shared_loader(search_path_string: str | None = None) -> Any:
    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = _create_loader(search_path_string)
    return _LOADERS[search_path_string]


def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every botocore session shares one model loader, so each service model is read
    from disk once per process instead of once per client (most of a test's set-up)."""
    monkeypatch.setattr(botocore.session, "create_loader", _shared_loader)


def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Publisher and SDK retries without waiting; returns the publisher's sleeps."""
    sleeps: list[float] = []

    @functools.lru_cache(maxsize=1)
    def publisher() -> Publisher:
        settings = get_settings()
        return Publisher(
            app_aws.events(),
            settings.publish_attempts,
            settings.publish_backoff_seconds,
            sleep=sleeps.append,
        )

    monkeypatch.setattr(services, "publisher", publisher)
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )
    return sleeps


# --- ledgers of what the app did -----------------------------------------------------


@contextmanager
def app_log() -> Iterator[list[logging.LogRecord]]:
    """Every record the app's logger emits inside the block."""
    handler = LogCollector()
    target = logging.getLogger(SERVICE)
    target.addHandler(handler)
    try:
        yield handler.records
    finally:
        target.removeHandler(handler)


@dataclass
class Ledger:
    """Outcomes the app recorded (``close_order`` that created one) and customers told."""

    created: list[tuple[str, str]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    notified: list[tuple[str, str]] = field(default_factory=list)

    def created_for(self, order_id: str) -> list[str]:
        return [kind for order, kind in self.created if order == order_id]

    def notified_for(self, order_id: str) -> list[str]:
        return [invoice for order, invoice in self.notified if order == order_id]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Ledger:
        close = EventStore.close_order
        notify = LogNotifier.order_sent

        def closing(
            store: EventStore, order_id: str, outcome: Outcome, notify_claim: Any = None
        ) -> tuple[Outcome, bool]:
            self.attempts.append(order_id)
            stored, created = close(store, order_id, outcome, notify_claim)
            if created:
                self.created.append((order_id, stored.kind))
            return stored, created

        def sending(
            notifier: LogNotifier, order_id: str, invoice: dict[str, Any], key: str
        ) -> None:
            self.notified.append((order_id, str(invoice.get("invoiceId"))))
            notify(notifier, order_id, invoice, key)

        monkeypatch.setattr(EventStore, "close_order", closing)
        monkeypatch.setattr(LogNotifier, "order_sent", sending)
        return self


def order_items(aws: AwsClients, order_id: str) -> dict[str, dict[str, Any]]:
    """Every item of one order (test side client, strongly consistent), by sort key."""
    page = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": table.PARTITION_KEY},
        ExpressionAttributeValues={":pk": {"S": order_id}},
        ConsistentRead=True,
    )
    items = [to_python(item) for item in page.get("Items", [])]
    return {str(item[table.SORT_KEY]): item for item in items}


def outcome_records(aws: AwsClients, order_id: str) -> list[dict[str, Any]]:
    """The order's items that carry an outcome (there must never be more than one)."""
    return [item for item in order_items(aws, order_id).values() if table.OUTCOME in item]


def delivered_for(events: list[dict[str, Any]], order_id: str) -> list[str]:
    """Statuses of the aggregated events on the bus for one order, in order."""
    return [
        str(e["detail"].get("status"))
        for e in events
        if isinstance(e.get("detail"), dict) and e["detail"].get("OrderID") == order_id
    ]


# --- the whole app under test --------------------------------------------------------


@dataclass
class Harness:
    """The app, its HTTP client, its pipeline and faults on its two AWS clients."""

    aws: AwsClients
    app: Any
    client: Client
    pipeline: Pipeline
    db: FaultInjector
    bus: FaultInjector
    _reader: StreamReader | None = None
    _records: list[dict[str, Any]] = field(default_factory=list)

    def post(self, order_id: str, name: str, status: str, **extra: Any) -> Any:
        return post_result(self.client, order_id, name, status, **extra)

    def post_until_answered(
        self, order_id: str, name: str, status: str, attempts: int = 10, **extra: Any
    ) -> list[int]:
        """Post as a source does: again after every 5xx. Returns every status code."""
        codes: list[int] = []
        for _ in range(attempts):
            codes.append(self.post(order_id, name, status, **extra).status_code)
            if codes[-1] < 500:
                return codes
        raise AssertionError(f"still failing after {attempts} attempts: {codes}")

    def view(self, order_id: str) -> dict[str, Any]:
        response = self.client.http.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.body
        body: dict[str, Any] = response.json_body
        return body

    def run(self) -> None:
        self.pipeline.run_until_idle()

    def sweep(self) -> None:
        """One run of every schedule (the timeout sweep), then everything it caused."""
        self.pipeline.run_schedules()
        self.run()

    def delivered(self, order_id: str) -> list[str]:
        return delivered_for(self.pipeline.delivered, order_id)

    def events_for(self, order_id: str) -> list[dict[str, Any]]:
        return [e for e in self.pipeline.delivered if e["detail"].get("OrderID") == order_id]

    def redeliver(self, events: list[dict[str, Any]], attempts: int = 3) -> None:
        """Deliver events again to every target whose rule matches (EventBridge duplicates),
        retrying a target that raises as EventBridge does."""
        for event in events:
            for rule in self.pipeline.router.matching(event):
                for attempt in range(1, attempts + 1):
                    try:
                        rule.handler(event, None)
                        break
                    except Exception:
                        if attempt == attempts:
                            raise

    def stream_records(self) -> list[dict[str, Any]]:
        """Every record on the table's stream so far that the deployed trigger's filter
        lets through, as Lambda hands them over."""
        if self._reader is None:
            arn = resolve_stream_arn(self.aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
            self._reader = StreamReader(self.aws.streams, arn, REGION)
        pattern = stream_filter_pattern()
        while fresh := self._reader.read(1000):
            self._records.extend(r for r in fresh if matches(pattern, r))
        return list(self._records)

    def recover_failures(self) -> dict[str, Any]:
        """Send what the stream mapping gave up on to ``stream_recovery`` as Lambda's
        on-failure messages (``DDBStreamBatchInfo``, one per record), as the deployed
        trigger's SQS destination does."""
        arn = resolve_stream_arn(self.aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
        shard = self.aws.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        bodies = [
            json.dumps(on_failure_message(arn, shard["ShardId"], [entry["record"]]))
            for entry in self.pipeline.failures.entries
        ]
        event = self.client.events.generate_sqs_event(message_bodies=bodies, queue_name="failures")
        payload: dict[str, Any] = self.client.lambda_.invoke("stream_recovery", event).payload
        return payload

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the stream handler with ``records`` (a batch Lambda re-delivers)."""
        payload: dict[str, Any] = self.client.lambda_.invoke(
            "aggregator", {"Records": records}
        ).payload
        return payload


def on_failure_message(
    stream_arn: str, shard_id: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Lambda's on-failure record for a discarded stream batch, as documented."""
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    return {
        "requestContext": {
            "requestId": "test",
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aggregator",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": min(sequences, key=int),
            "endSequenceNumber": max(sequences, key=int),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


@contextmanager
def harness(load_app: Callable[..., Any], aws: AwsClients, **env: str) -> Iterator[Harness]:
    """Load the app with ``env``, then wire a client, a pipeline and fault injectors."""
    app = load_app(**env)
    with ExitStack() as stack:
        client = stack.enter_context(Client(app, stage_name="local"))
        # No FilterCriteria: these tests hand the aggregator records the deployed filter
        # would drop, to prove the handler itself copes with them.
        pipeline = Pipeline(app, aws, ACCOUNT, REGION, stream_overrides={**ONE_LANE, "filters": []})
        db = app_dynamodb_faults()
        stack.callback(db.close)
        bus = app_events_faults()
        stack.callback(bus.close)
        yield Harness(aws, app, client, pipeline, db, bus)


@contextmanager
def shared_harness(**env: str) -> Iterator[Harness]:
    """A moto account and the app for a whole module: tests keep to their own order ids.

    Does what the ``aws`` and ``load_app`` fixtures of ``tests/conftest.py`` do, once:
    setting up a moto account, its clients and the app costs far more than a request.
    """
    saved = dict(os.environ)
    import app as app_module

    try:
        with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
            shared_models(monkeypatch)
            session = boto3.session.Session(region_name=REGION)
            session.client("dynamodb").create_table(**table.create_table_request(TABLE))
            clients = AwsClients.from_session(session)
            no_backoff(monkeypatch)

            def load(**extra: str) -> Any:
                os.environ.update(extra)
                services.reset()
                return importlib.reload(app_module).app

            with harness(load, clients, **env) as built:
                yield built
    finally:
        os.environ.clear()
        os.environ.update(saved)
        services.reset()
        importlib.reload(app_module)
