"""Every AWS call a function makes is one its role grants.

The least-privilege policies of the stack (``.chalice/merge-template.json``, rendered by
``scripts.render_template``) are written by hand per function; a code path that calls
something new would be refused by IAM in a real account and nowhere else. So this test
drives every path of every function on moto (results, reads, aggregation, outcomes and
notifications, dead-lettering and unparking, timeouts, resumed notifications, stream
recovery), records each call of the app's own clients with the function that made it,
and compares them with the actions of that function's role.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import aws as app_aws
from chalicelib import clock, table
from chalicelib.config import get_settings
from local.pipeline import AwsClients, resolve_stream_arn
from local.streams import StreamReader
from scripts import render_template as rt
from tests.helpers import REGION, TABLE, TEST_ENV, make_pipeline, post_result

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
# IAM's prefix for each client's service.
IAM_PREFIX = {"dynamodb": "dynamodb", "dynamodbstreams": "dynamodb", "events": "events"}


def _granted() -> dict[str, set[str]]:
    """Function name -> actions its role's policies allow, from the merge template."""
    template = json.loads((rt.CHALICE_DIR / rt.MERGE_TEMPLATE).read_text())
    granted: dict[str, set[str]] = {}
    for spec in rt.FUNCTIONS:
        role = template["Resources"][spec.role_id]
        actions = {
            action
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if "Fn::If" not in statement  # X-Ray's calls, granted while tracing is on
            for action in statement["Action"]
        }
        granted[spec.name] = actions
    return granted


@pytest.fixture
def calls(chalice_app: Any) -> Iterator[dict[str, set[str]]]:
    """Function name -> the IAM actions it was seen calling (the API when none runs)."""
    running = ["api_handler"]
    seen: dict[str, set[str]] = defaultdict(set)

    def wrap(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            running.append(name)
            try:
                return handler(*args, **kwargs)
            finally:
                running.pop()

        return wrapped

    names = {spec.name for spec in rt.FUNCTIONS}
    originals = dict(chalice_app.handler_map)
    for name in names & set(originals):
        chalice_app.handler_map[name] = wrap(name, originals[name])

    def record(model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        seen[running[-1]].add(f"{IAM_PREFIX[service]}:{model.name}")

    clients = (app_aws.dynamodb(), app_aws.dynamodb_streams(), app_aws.events())
    for client in clients:
        client.meta.events.register("before-call.*.*", record)
    yield seen
    for client in clients:
        client.meta.events.unregister("before-call.*.*", record)
    chalice_app.handler_map.update(originals)


def test_every_call_of_every_function_is_granted_to_its_role(
    client: Client,
    chalice_app: Any,
    aws: AwsClients,
    calls: dict[str, set[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moment = [NOW]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    pipeline = make_pipeline(chalice_app, aws)
    # Results, views, aggregation, an invoice with its notification, a problem.
    for check in ("Account Check", "In Stock"):
        post_result(client, "ok", check, "passed")
    post_result(client, "no", "In Stock", "failed")
    post_result(client, "slow", "Account Check", "passed")
    client.http.get("/orders/ok")
    # A declaration with its own deadline (PUT), the same one again, and its order.
    declaration = json.dumps({"checks": ["In Stock"], "deadline": "2026-01-31T12:05:00Z"})
    for expected in (201, 200):
        answer = client.http.put(
            "/orders/declared", headers={"Content-Type": "application/json"}, body=declaration
        )
        assert answer.status_code == expected
    post_result(client, "declared", "In Stock", "passed")
    # A corrupt order record: dead-lettered, then unparked once it can be published.
    corrupt = {"OrderID": {"S": "bad"}, "EventName": {"S": table.ORDER_RECORD}}
    aws.dynamodb.put_item(TableName=TABLE, Item={**corrupt, "Outcome": {"S": "lost"}})
    post_result(client, "bad", "In Stock", "passed")
    pipeline.run_until_idle()
    aws.dynamodb.delete_item(TableName=TABLE, Key=corrupt)
    post_result(client, "bad", "Account Check", "passed")
    pipeline.run_until_idle()
    # An invoice whose notification was claimed but never completed, a corrupt due
    # order and a timeout: all the sweep's paths.
    aws.dynamodb.update_item(
        TableName=TABLE,
        Key={"OrderID": {"S": "ok"}, "EventName": {"S": table.ORDER_RECORD}},
        UpdateExpression="REMOVE NotifiedAt SET PendingShard = :s, Deadline = :d",
        ExpressionAttributeValues={":s": {"S": "pending-0"}, ":d": {"S": "2026-01-31T12:00:01Z"}},
    )
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "OrderID": {"S": "rotten"},
            "EventName": {"S": table.ORDER_RECORD},
            "Outcome": {"S": "lost"},
            "PendingShard": {"S": "pending-0"},
            "Deadline": {"S": "2026-01-31T12:00:02Z"},
        },
    )
    moment[0] = NOW + timedelta(seconds=get_settings().order_timeout_seconds + 1)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    # A discarded stream range, read back by stream_recovery; and one the stream lost.
    arn = resolve_stream_arn(aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
    shard = aws.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    record = StreamReader(aws.streams, arn, REGION).read(1)[0]
    number = record["dynamodb"]["SequenceNumber"]
    info = {"shardId": shard["ShardId"], "streamArn": arn}
    info.update(startSequenceNumber=number, endSequenceNumber=number)
    event = client.events.generate_sqs_event(
        message_bodies=[json.dumps({"DDBStreamBatchInfo": info})], queue_name="q"
    )
    client.lambda_.invoke("stream_recovery", event)

    assert set(calls) == {spec.name for spec in rt.FUNCTIONS}, "every function ran"
    assert calls["aggregator"] >= {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert calls["timeout_sweep"] >= {
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "events:PutEvents",
    }
    granted = _granted()
    refused = {name: sorted(made - granted[name]) for name, made in calls.items()}
    assert refused == {name: [] for name in calls}
