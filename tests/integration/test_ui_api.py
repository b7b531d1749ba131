"""The runtime's EventBridge ``TestEventPattern`` and its web UI's JSON API, over loopback
against a real ``python -m local run`` process.

``TestEventPattern`` through boto3 must give what AWS gave for every case of the
conformance suite (tests/conformance/eventbridge-patterns, recorded on AWS): ``Result``
true for ``NAME``, false for ``NAME_NEG``, ``InvalidEventPatternException`` with AWS's
message for ``NAME_EXC`` (API_TestEventPattern).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.ops_support import aws_client, post
from tests.integration.test_local_runtime import RuntimeProcess, _free_port
from tests.unit.test_eventbridge_patterns import CASES, RECORDED_ERRORS, TEMPLATES, _load


@dataclass(frozen=True)
class Runtime:
    proc: RuntimeProcess
    api: str
    aws: str
    events: str
    ui: str


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    proc = RuntimeProcess("--ui-port", str(_free_port()))
    try:
        found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)")
        events = proc.wait_for(r"TestEventPattern at (http://\S+)").group(1)
        ui = proc.wait_for(r"web UI at (http://\S+)").group(1)
        yield Runtime(proc, found.group(1), found.group(2), events, ui)
    finally:
        assert proc.stop() == 0


def _ui(runtime: Runtime, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        runtime.ui + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_test_event_pattern_through_boto3_agrees_with_every_conformance_case(
    runtime: Runtime,
) -> None:
    events = aws_client("events", runtime.events)
    disagreements = []
    for path in CASES:
        pattern, event = _load(path)
        kind = path.stem.rsplit("_", 1)[-1]
        try:
            got: object = events.test_event_pattern(
                EventPattern=json.dumps(pattern), Event=json.dumps(event)
            )["Result"]
        except events.exceptions.InvalidEventPatternException as err:
            got = err.response["Error"]["Message"]
        expected = {"EXC": RECORDED_ERRORS.get(path.stem), "NEG": False}.get(kind, True)
        if got != expected:
            disagreements.append((path.stem, expected, got))
    assert disagreements == []
    # A key repeated inside one object, read as raw text as AWS reads it: a match.
    raw_pattern = (TEMPLATES / "complex_multi_key_event_pattern.json").read_text()
    raw_event = (TEMPLATES / "complex_multi_key_event.json").read_text()
    assert events.test_event_pattern(EventPattern=raw_pattern, Event=raw_event)["Result"] is True


def test_the_printed_aws_endpoint_answers_as_eventbridge_does(runtime: Runtime) -> None:
    """Users' tools (chalice local, ops, the AWS CLI) get the printed AWS endpoint: it
    answers TestEventPattern and refuses a PutEvents request of 256 KB or more, as AWS
    does (eb-putevents: "The total entry size must be less than 256KB")."""
    events = aws_client("events", runtime.aws)
    assert events.test_event_pattern(
        EventPattern='{"source": ["shop"]}',
        Event=json.dumps(
            {
                "id": "1",
                "account": "123456789012",
                "source": "shop",
                "time": "2026-12-01T00:00:00Z",
                "region": "us-east-1",
                "resources": [],
                "detail-type": "x",
                "detail": {},
            }
        ),
    )["Result"]
    with pytest.raises(events.exceptions.InvalidEventPatternException):
        events.test_event_pattern(EventPattern='{"source": "shop"}', Event="{}")
    big = {"Source": "shop", "DetailType": "x", "Detail": json.dumps({"r": "x" * 262_144})}
    with pytest.raises(events.exceptions.ClientError) as refused:
        events.put_events(Entries=[big])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    # Everything else is moto behind it: a table call goes through unchanged.
    assert "TableNames" in aws_client("dynamodb", runtime.aws).list_tables()


def test_the_ui_sandbox_answers_as_test_event_pattern(runtime: Runtime) -> None:
    pattern, event = _load(TEMPLATES / "boolean.json5")
    request = {"EventPattern": json.dumps(pattern), "Event": json.dumps(event)}
    assert _ui(runtime, "/api/pattern", request) == (200, {"Result": True})
    status, error = _ui(runtime, "/api/pattern", {**request, "EventPattern": '{"int": 1}'})
    assert (status, error["__type"]) == (400, "InvalidEventPatternException")
    assert (
        error["message"]
        == 'Event pattern is not valid. Reason: "int" must be an object or an array'
    )


def test_the_ui_api_answers_bad_input_with_a_4xx_naming_it(runtime: Runtime) -> None:
    assert _ui(runtime, "/api/activity?since=x") == (
        400,
        {"error": "'since' must be a sequence number (0 or more)"},
    )
    status, body = _ui(runtime, "/api/views/nothing")
    assert status == 404 and "no view 'nothing'" in body["error"]
    status, body = _ui(runtime, "/api/redrive", {"queue": "nope", "messageId": "1"})
    assert status == 409 and "unknown queue 'nope'" in body["error"]
    status, body = _ui(runtime, "/api/redrive", {"queue": 7})
    assert (status, body) == (400, {"error": "'queue' must be a non-empty string"})
    status, body = _ui(runtime, "/api/nowhere")
    assert status == 404


def test_a_dead_letter_queue_message_is_redriven_to_its_source_queue(runtime: Runtime) -> None:
    sqs = aws_client("sqs", runtime.aws)
    dlq = sqs.get_queue_url(QueueName="StreamFailureDeadLetterQueue")["QueueUrl"]
    # The stream failure queue: the local stage names it (STREAM_FAILURE_QUEUE).
    source_name = "aggregator-events-local-stream-failures"
    source = sqs.get_queue_url(QueueName=source_name)["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"note": "parked by hand"}')
    status, streams = _ui(runtime, "/api/streams")
    assert status == 200
    (queue,) = [q for q in streams["queues"] if q["name"] == "StreamFailureDeadLetterQueue"]
    assert (queue["kind"], queue["owner"], queue["count"]) == ("queue-dlq", source_name, 1)
    (message,) = queue["messages"]
    assert message["body"] == {"note": "parked by hand"}

    status, done = _ui(
        runtime,
        "/api/redrive",
        {"queue": "StreamFailureDeadLetterQueue", "messageId": message["id"]},
    )
    assert (status, done["result"]) == (200, f"sent back to {source_name}")
    # Back in its source queue, visible or already taken by stream_recovery (its
    # on_sqs_message consumer, which cannot read it and leaves it for the next receive).
    held = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])["Attributes"]
    in_queue = int(held["ApproximateNumberOfMessages"])
    assert in_queue + int(held["ApproximateNumberOfMessagesNotVisible"]) == 1
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    status, again = _ui(
        runtime,
        "/api/redrive",
        {"queue": "StreamFailureDeadLetterQueue", "messageId": message["id"]},
    )
    assert status == 409 and "already redriven" in again["error"]


def _activity_until(runtime: Runtime, ready: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    snapshot: dict[str, Any] = {}
    while time.monotonic() < deadline:
        snapshot = _ui(runtime, "/api/activity?since=0")[1]
        if ready(snapshot):
            return snapshot
        time.sleep(0.2)
    raise AssertionError(f"the activity never got there: {snapshot}")


def test_activity_shows_every_invocation_and_every_event_with_its_rules(runtime: Runtime) -> None:
    post(runtime.api, "ui-act", "Account Check", "passed")
    # An entry EventBridge refuses never reaches the bus; the event flow says why.
    refused = aws_client("events", runtime.events).put_events(
        Entries=[{"Source": "shop", "DetailType": "t", "Detail": "[]"}]
    )
    assert refused["Entries"][0]["ErrorCode"] == "MalformedDetail"

    def pending_event(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            e
            for e in snapshot["events"]
            if isinstance(e["detail"], dict) and e["detail"].get("OrderID") == "ui-act"
        ]

    snapshot = _activity_until(runtime, lambda s: pending_event(s))
    calls = snapshot["invocations"]
    served = [c for c in calls if c["value"] == "POST /orders/ui-act/events → 201"]
    assert [(c["function"], c["source"], c["result"]) for c in served] == [
        ("api_handler", "api", "ok")
    ]
    assert any(c["function"] == "aggregator" and c["source"] == "dynamodb" for c in calls)
    (event,) = pending_event(snapshot)
    assert event["matched"] == []
    assert sorted(u["rule"] for u in event["unmatched"]) == [
        "invoice_processing",
        "problem_handler",
    ]
    assert {u["reason"] for u in event["unmatched"]} == {"event pattern does not match"}
    refused = [e["refused"] for e in snapshot["events"] if e.get("refused")]
    # This test's malformed entry (other tests of the module may add refusals of their own).
    assert "MalformedDetail: Detail is malformed." in refused
    seqs = [c["seq"] for c in calls]
    assert seqs == sorted(seqs, reverse=True)
