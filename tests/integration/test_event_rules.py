"""EventBridge on the local runtime follows EventBridge's and Lambda's documented rules.

A real ``python -m local run`` process serves the sample app in ``apps/events``. The
rules, from the AWS documentation:

* API_PutEvents and eb-putevent-size: at most 10 entries; the entries of a request total
  less than 256 KB by the entry-size rule, else ``ValidationException``;
  PutEventsResultEntry: ``InvalidArgument`` and ``MalformedDetail`` per entry;
* invocation-async-error-handling: a target is invoked asynchronously; on a function
  error Lambda retries twice by default (``MaximumRetryAttempts``), then
  invocation-async-retain-records: the on-failure destination gets an invocation record,
  a dead-letter queue gets the event itself;
* eb-rule-state / DISABLED rules deliver nothing;
* a throttled Invoke call (no concurrency left: ReservedConcurrentExecutions 0) goes
  through the rule target's retry policy (eb-rule-retry-policy, API_RetryPolicy: until
  MaximumRetryAttempts or MaximumEventAgeInSeconds), then to its DeadLetterConfig queue
  with the attributes of eb-rule-dlq (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE,
  EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS); without one it is dropped;
* the scheduled event (``Scheduled Event`` from ``aws.events`` with the rule's ARN);
* python-context: the context object.

The clock runs 60 times faster (``--time-scale 60``): the one- and two-minute waits
between attempts take one and two seconds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_plugin.demo import call
from tests.integration.test_local_runtime import RuntimeProcess

APP = Path(__file__).parent / "apps" / "events"
SESSION = boto3.session.Session(
    region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
)


class EventApp:
    def __init__(self, proc: RuntimeProcess, base: str, endpoint: str) -> None:
        self.proc = proc
        self.base = base
        self.sqs = SESSION.client("sqs", endpoint_url=endpoint)

    def publish(self, *entries: dict[str, Any]) -> dict[str, Any]:
        status, body = call("POST", f"{self.base}/publish", {"Entries": list(entries)})
        assert status == 200, body
        return dict(body)

    def calls(self, handler: str) -> list[dict[str, Any]]:
        found = []
        for line in list(self.proc.lines):
            if "HANDLER " in line:
                found_call, _ = json.JSONDecoder().raw_decode(line.split("HANDLER ", 1)[1])
                if found_call["handler"] == handler:
                    found.append(found_call)
        return found

    def take(self, queue: str, timeout: float = 30.0) -> dict[str, Any]:
        body, _ = self.take_message(queue, timeout)
        return body

    def take_message(
        self, queue: str, timeout: float = 30.0
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The next message's JSON body and its String message attributes."""
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        for _ in range(int(timeout)):
            page = self.sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            )
            for message in page.get("Messages", []):
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                body: dict[str, Any] = json.loads(message["Body"])
                attributes = {
                    name: value["StringValue"]
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                return body, attributes
        raise AssertionError(f"nothing on {queue}:\n" + "\n".join(self.proc.lines[-40:]))


def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _start(*args: str) -> EventApp:
    proc = RuntimeProcess("--project-dir", str(APP), *args)
    found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)", 60)
    return EventApp(proc, found.group(1), found.group(2))


@pytest.fixture(scope="module")
def events() -> Iterator[EventApp]:
    app = _start("--time-scale", "60", "--schedule-every", "1")
    try:
        yield app
    finally:
        assert app.proc.stop() == 0


def _entry(detail_type: str, detail: Any, **extra: Any) -> dict[str, Any]:
    return {"Source": "tests", "DetailType": detail_type, "Detail": json.dumps(detail), **extra}


def test_put_events_refuses_more_than_ten_entries(events: EventApp) -> None:
    answer = events.publish(*[_entry("unrouted", {"n": n}) for n in range(11)])
    assert answer["error"] == "ValidationException"


def test_put_events_refuses_a_request_of_256_kb_or_more_by_the_entry_size_rule(
    events: EventApp,
) -> None:
    # Entry size: Source + DetailType + Detail bytes (+ 14 for Time, + each resource).
    overhead = len("tests") + len("unrouted") + len(json.dumps({"pad": ""}))
    just_under = 256 * 1024 - 1 - overhead
    accepted = events.publish(_entry("unrouted", {"pad": "x" * just_under}))
    assert accepted["FailedEntryCount"] == 0
    refused = events.publish(_entry("unrouted", {"pad": "x" * (just_under + 1)}))
    assert refused["error"] == "ValidationException"
    half = _entry("unrouted", {"pad": "é" * (64 * 1024)})  # 2 bytes per character
    assert events.publish(half, dict(half))["error"] == "ValidationException"


def test_put_events_answers_errors_per_entry_and_delivers_the_rest(events: EventApp) -> None:
    good = _entry("greeting", {"who": "per-entry"})
    no_source = {k: v for k, v in _entry("greeting", {"who": "x"}).items() if k != "Source"}
    not_an_object = {**_entry("greeting", {}), "Detail": "[1, 2]"}
    answer = events.publish(good, no_source, not_an_object)
    assert answer["FailedEntryCount"] == 2
    assert "EventId" in answer["Entries"][0]
    assert answer["Entries"][1]["ErrorCode"] == "InvalidArgument"
    assert answer["Entries"][2]["ErrorCode"] == "MalformedDetail"
    _until(
        lambda: any(c["event"]["detail"] == {"who": "per-entry"} for c in events.calls("greeter"))
    )
    assert [c["event"]["detail"] for c in events.calls("greeter")].count({"who": "x"}) == 0


def test_only_enabled_rules_deliver(events: EventApp) -> None:
    events.publish(_entry("greeting", {"who": "enabled-only"}))
    _until(
        lambda: any(
            c["event"]["detail"] == {"who": "enabled-only"} for c in events.calls("greeter")
        )
    )
    # Both rules have the same pattern; the DISABLED one matched nothing. This app has
    # no plug-in: the hop lines are the runtime's generic ones.
    assert events.proc.count(r"\[eventbridge\] greeter \(1 record\) → matched") >= 1
    assert events.proc.count(r"\[eventbridge\] switched_off \(1 record\) → matched") == 0
    assert events.calls("switched_off") == []


def test_only_rules_on_the_bus_an_event_was_put_on_match(events: EventApp) -> None:
    """eb-what-is-how-it-works: a rule matches events on its own bus. ``other_bus`` has
    the greeter's pattern on the bus ``event-rules-other`` (EventBusName)."""
    events.publish(_entry("greeting", {"who": "other"}, EventBusName="event-rules-other"))
    events.publish(_entry("greeting", {"who": "default"}))
    _until(lambda: any(c["event"]["detail"] == {"who": "other"} for c in events.calls("other_bus")))
    _until(lambda: any(c["event"]["detail"] == {"who": "default"} for c in events.calls("greeter")))
    time.sleep(1)  # both events were routed; a wrong delivery would have run by now
    assert {"who": "default"} not in [c["event"]["detail"] for c in events.calls("other_bus")]
    assert {"who": "other"} not in [c["event"]["detail"] for c in events.calls("greeter")]


def test_a_failing_target_is_retried_then_its_on_failure_destination_gets_the_record(
    events: EventApp,
) -> None:
    events.publish(_entry("flaky", {"try": 1}))
    record = events.take("event-rules-flaky-failures")
    calls = events.calls("flaky")
    assert len(calls) == 3  # the attempt and MaximumRetryAttempts' default 2 retries
    assert len({c["request"] for c in calls}) == 3
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"] == calls[0]["arn"] + ":$LATEST"
    assert record["requestPayload"] == calls[0]["event"]
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "flaky target"
    # MaximumRetryAttempts 0 and a dead-letter queue: one attempt, the event itself.
    dead = events.take("event-rules-dead-letters")
    assert dead == events.calls("dead_lettered")[0]["event"]
    assert len(events.calls("dead_lettered")) == 1


def test_scheduled_events_have_the_real_envelope(events: EventApp) -> None:
    _until(lambda: bool(events.calls("ticker")))
    event = events.calls("ticker")[0]["event"]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert event["resources"] == [
        "arn:aws:events:us-east-1:123456789012:rule/event-rules-local-ticker"
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    datetime.fromisoformat(event["time"])
    assert event["detail"] == {}
    assert len(event["id"]) == 36


def test_targets_get_a_lambda_context_object_and_the_stage_environment(
    events: EventApp,
) -> None:
    events.publish(_entry("greeting", {"who": "context"}))
    _until(lambda: any(c["event"]["detail"] == {"who": "context"} for c in events.calls("greeter")))
    greeting = next(
        c for c in events.calls("greeter") if c["event"]["detail"] == {"who": "context"}
    )
    assert greeting["function_name"] == "event-rules-local-greeter"
    assert (
        greeting["arn"]
        == "arn:aws:lambda:us-east-1:123456789012:function:event-rules-local-greeter"
    )
    assert greeting["memory"] == 512
    assert 0 < greeting["remaining_ms"] <= 60_000
    assert greeting["colour"] == "blue"


def test_duplicate_rate_delivers_events_again() -> None:
    app = _start("--duplicate-rate", "1")
    try:
        app.publish(_entry("greeting", {"who": "twice"}))
        _until(
            lambda: (
                [c["event"]["detail"] for c in app.calls("greeter")].count({"who": "twice"}) == 2
            )
        )
        first, second = (
            c for c in app.calls("greeter") if c["event"]["detail"] == {"who": "twice"}
        )
        assert first["event"]["id"] == second["event"]["id"]
        assert first["request"] != second["request"]
    finally:
        assert app.proc.stop() == 0


def test_a_throttled_target_retries_by_its_retry_policy_then_goes_to_its_dead_letter_queue() -> (
    None
):
    """Both targets have reserved concurrency 0 (one from config.json, one from the merge
    template): every Invoke call is throttled and neither handler ever runs."""
    app = _start("--time-scale", "60")
    try:
        app.publish(_entry("throttled", {"try": "throttle"}))
        body, attributes = app.take_message("event-rules-target-dead-letters")
        assert body["detail-type"] == "throttled"
        assert body["detail"] == {"try": "throttle"}
        assert attributes["ERROR_CODE"] == "THROTTLING"
        assert "TooManyRequestsException" in attributes["ERROR_MESSAGE"]
        # RetryPolicy MaximumRetryAttempts 2: the first try and two retries.
        assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
        assert attributes["RETRY_ATTEMPTS"] == "2"
        assert attributes["RULE_ARN"] == (
            "arn:aws:events:us-east-1:123456789012:rule/event-rules-local-throttled"
        )
        assert attributes["TARGET_ARN"] == (
            "arn:aws:lambda:us-east-1:123456789012:function:event-rules-local-throttled"
        )
        assert app.proc.count(r"\d throttled: throttled \(TooManyRequestsException\)") == 2
        # MaximumEventAgeInSeconds 60 and no DeadLetterConfig: dropped, and said so.
        app.proc.wait_for(
            r"throttled_by_age: target gave up \(MaximumEventAgeInSeconds\), event dropped"
        )
        assert app.calls("throttled") == [] and app.calls("throttled_by_age") == []
    finally:
        assert app.proc.stop() == 0
    app.proc.wait_for(r"EventBridge targets throttled: \d+ Invoke call\(s\)")
    app.proc.wait_for(
        r"rule targets gave up on 2 event\(s\): 1 to a dead-letter queue or destination, "
        r"1 dropped"
    )
