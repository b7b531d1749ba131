"""``python -m ops`` against a real local runtime process, as an operator runs it.

One runtime (``python -m local run``, loopback, free ports) serves the whole module;
each test drives orders through its HTTP API and runs ``python -m ops --endpoint ...``
as a subprocess, checking ``--json`` output against ops.schema.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops_support import (
    TABLE,
    aws_client,
    partition,
    post,
    run_ops,
    wait_for_view,
    wait_until_listed,
)
from tests.integration.test_local_runtime import RuntimeProcess, _free_port

Runtime = tuple[RuntimeProcess, str, str]


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    proc = RuntimeProcess()
    try:
        found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)")
        yield proc, found.group(1), found.group(2)
    finally:
        assert proc.stop() == 0


def ops(runtime: Runtime, *args: str) -> tuple[int, str, str]:
    ran = run_ops("--endpoint", runtime[2], *args)
    return ran.code, ran.stdout, ran.stderr


def ops_json(runtime: Runtime, *args: str) -> tuple[int, Any]:
    ran = run_ops("--endpoint", runtime[2], "--json", *args)
    return ran.code, ran.json


def test_inspect_tells_an_invoiced_order_with_a_late_result(runtime: Runtime) -> None:
    _, base, _ = runtime
    post(base, "ops-late", "Account Check", "passed")
    post(base, "ops-late", "In Stock", "passed")
    invoiced = wait_for_view(base, "ops-late", lambda v: v.get("notified") is True)
    post(base, "ops-late", "In Stock", "failed", reason="recount")
    wait_for_view(base, "ops-late", lambda v: v["events"]["In Stock"].get("late") is True)

    code, story = ops_json(runtime, "inspect", "ops-late")
    assert code == 0
    assert story["status"] == "invoiced"
    assert story["outcome"]["invoice"] == invoiced["invoice"]
    assert story["notification"]["state"] == "told"
    assert story["waitingFor"] == [] and story["deadline"] is None
    timeline = story["timeline"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    events = [e["event"] for e in timeline]
    assert events == ["check-result", "outcome", "customer-told", "check-result"]
    late = timeline[-1]
    assert (late["check"], late["status"], late["reason"], late["late"]) == (
        "In Stock",
        "failed",
        "recount",
        True,
    )
    code, text, _ = ops(runtime, "inspect", "ops-late")
    assert code == 0
    assert text.startswith("order ops-late: invoiced\n")
    assert "In Stock = failed ('recount')" in text and "LATE" in text
    assert f"invoice {invoiced['invoice']['invoiceId']}" in text
    assert "waiting for:  nothing (done)" in text


def test_inspect_and_pending_show_a_pending_order_with_its_deadline(runtime: Runtime) -> None:
    _, base, endpoint = runtime
    post(base, "ops-wait", "Account Check", "passed")
    view = wait_for_view(base, "ops-wait", lambda v: "deadline" in v)
    wait_until_listed(endpoint, "ops-wait")  # pending lists what the aggregator listed

    code, story = ops_json(runtime, "inspect", "ops-wait")
    assert code == 0
    assert (story["status"], story["deadline"], story["due"]) == (
        "pending",
        view["deadline"],
        False,
    )
    assert story["missing"] == ["In Stock"]
    assert story["waitingFor"] == [{"step": "check", "detail": "In Stock"}]
    assert [e["event"] for e in story["timeline"]] == ["check-result", "deadline"]

    code, listing = ops_json(runtime, "pending")
    assert code == 0
    (entry,) = [o for o in listing["orders"] if o["orderId"] == "ops-wait"]
    assert (entry["deadline"], entry["missing"], entry["due"]) == (
        view["deadline"],
        ["In Stock"],
        False,
    )
    assert listing["shards"] == ["pending-0", "pending-1", "pending-2", "pending-3"]
    # The local stage's timeout is 60 s: not due yet, and not first seen an hour ago.
    due = ops_json(runtime, "pending", "--due")[1]
    assert "ops-wait" not in [o["orderId"] for o in due["orders"]]
    old = ops_json(runtime, "pending", "--older-than", "1h")[1]
    assert "ops-wait" not in [o["orderId"] for o in old["orders"]]
    young = ops_json(runtime, "pending", "--older-than", "0s")[1]
    assert "ops-wait" in [o["orderId"] for o in young["orders"]]
    code, text, _ = ops(runtime, "pending", "--limit", "1")
    assert code == 0 and "undecided order(s)" in text.splitlines()[0]
    assert len([line for line in text.splitlines() if line.startswith("  ops-")]) <= 1


def test_inspect_shows_a_rejected_order_with_its_problem(runtime: Runtime) -> None:
    _, base, _ = runtime
    post(base, "ops-bad", "Account Check", "failed", reason="no credit")
    post(base, "ops-bad", "In Stock", "passed")
    wait_for_view(base, "ops-bad", lambda v: "decidedAt" in v)
    code, story = ops_json(runtime, "inspect", "ops-bad")
    assert code == 0 and story["status"] == "rejected"
    problem = story["outcome"]["problem"]
    assert problem["failed"] == [{"check": "Account Check", "reason": "no credit"}]
    assert story["notification"] is None
    code, text, _ = ops(runtime, "inspect", "ops-bad")
    assert "rejected: failed: Account Check (no credit)" in text


def test_an_unknown_order_is_one_line_on_stderr_and_exit_1(runtime: Runtime) -> None:
    code, out, err = ops(runtime, "inspect", "ops-nobody")
    assert (code, out) == (1, "")
    assert err == (
        "ops: no items stored for order 'ops-nobody' in table aggregator-events-local "
        f"(stage local, at {runtime[2]})\n"
    )
    code, replay = ops_json(runtime, "replay", "ops-nobody")
    assert code == 1 and replay["orders"][0]["action"] == "not-found"


def test_a_corrupt_order_is_parked_then_repaired_and_redriven_to_invoiced_once(
    runtime: Runtime,
) -> None:
    _, base, endpoint = runtime
    dynamodb = aws_client("dynamodb", endpoint)
    # The injected fault: another writer corrupted the order's own record.
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "OrderID": {"S": "ops-parked"},
            "EventName": {"S": "#order"},
            "Deadline": {"S": "soon"},
        },
    )
    post(base, "ops-parked", "Account Check", "passed")
    post(base, "ops-parked", "In Stock", "passed")
    wait_for_view(base, "ops-parked", lambda v: v.get("deadLettered") == "corrupt-item")

    code, story = ops_json(runtime, "inspect", "ops-parked")
    assert code == 0
    assert (story["status"], story["recordCorrupt"]) == ("unknown", True)
    assert story["problems"] == ["order record: Deadline 'soon' is not a time"]
    assert story["deadLetter"]["fault"] == "corrupt-item"
    assert story["waitingFor"][0]["step"] == "operator"

    code, parked = ops_json(runtime, "dead-letters")
    assert code == 0 and "ops-parked" in parked["orderIds"]
    (record,) = [r for r in parked["records"] if r["orderId"] == "ops-parked"]
    assert (record["fault"], record["kind"]) == ("corrupt-item", "order")
    # The stream failure queue exists (the local stage names it) and holds nothing: the
    # corrupt order was parked by the app, not discarded by the stream mapping.
    stream_queue = parked["queues"][0]
    assert (stream_queue["name"], stream_queue["exists"]) == (f"{TABLE}-stream-failures", True)
    assert stream_queue["messages"] == []

    # Still corrupt: redrive says so and leaves it parked.
    before = partition(endpoint, "ops-parked")
    code, result = ops_json(runtime, "redrive", "--order", "ops-parked")
    assert code == 4 and result["orders"][0]["action"] == "unreadable"
    assert partition(endpoint, "ops-parked") == before

    # The operator repairs the record; a dry run writes nothing.
    dynamodb.delete_item(
        TableName=TABLE, Key={"OrderID": {"S": "ops-parked"}, "EventName": {"S": "#order"}}
    )
    repaired = partition(endpoint, "ops-parked")
    code, text, _ = ops(runtime, "redrive", "--dry-run")
    assert code == 0
    assert "dry run: order ops-parked: would-publish [approved]" in text
    assert "dry run: dead-letters ops-parked: would remove the dead-letter record" in text
    assert partition(endpoint, "ops-parked") == repaired

    code, result = ops_json(runtime, "redrive")
    assert code == 0
    assert [(o["orderId"], o["action"]) for o in result["orders"]] == [("ops-parked", "published")]
    assert result["entries"][0]["result"] == "removed the dead-letter record"
    done = wait_for_view(base, "ops-parked", lambda v: v.get("notified") is True)
    assert done["status"] == "invoiced" and "deadLettered" not in done

    settled = partition(endpoint, "ops-parked")
    code, out, _ = ops(runtime, "redrive")
    assert code == 1 and "nothing to do" in out
    code, again = ops_json(runtime, "redrive", "--order", "ops-parked")
    assert code == 0 and again["orders"][0]["action"] == "already-decided"
    assert partition(endpoint, "ops-parked") == settled
    assert "ops-parked" not in ops_json(runtime, "dead-letters")[1]["orderIds"]


def _stream_record(endpoint: str, order_id: str, check: str) -> tuple[str, str, str]:
    """(stream ARN, shard id, sequence number) of the order's source event."""
    streams = aws_client("dynamodbstreams", endpoint)
    arn = aws_client("dynamodb", endpoint).describe_table(TableName=TABLE)["Table"][
        "LatestStreamArn"
    ]
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        for record in records:
            keys = record["dynamodb"]["Keys"]
            if keys["OrderID"]["S"] == order_id and keys["EventName"]["S"] == check:
                return arn, shard["ShardId"], record["dynamodb"]["SequenceNumber"]
    raise AssertionError(f"no stream record for {order_id}/{check}")


def _range_message(endpoint: str, order_id: str) -> str:
    """What Lambda sends the stream failure queue when it discards a batch
    (DDBStreamBatchInfo) holding the order's Account Check record."""
    arn, shard, sequence = _stream_record(endpoint, order_id, "Account Check")
    info = {
        "shardId": shard,
        "startSequenceNumber": sequence,
        "endSequenceNumber": sequence,
        "streamArn": arn,
        "batchSize": 1,
    }
    return json.dumps({"DDBStreamBatchInfo": info})


def test_a_discarded_stream_range_is_re_aggregated_by_stream_recovery(runtime: Runtime) -> None:
    proc, base, endpoint = runtime
    sqs = aws_client("sqs", endpoint)
    # The queue the local stage names (STREAM_FAILURE_QUEUE): the aggregator's on-failure
    # destination, and the queue stream_recovery's on_sqs_message reads, as deployed.
    url = sqs.get_queue_url(QueueName=f"{TABLE}-stream-failures")["QueueUrl"]
    post(base, "ops-recover", "Account Check", "passed")
    wait_for_view(base, "ops-recover", lambda v: "deadline" in v)
    aggregated = r"\[order ops-recover\] aggregated event: status=pending"
    proc.wait_for(aggregated)
    before = proc.count(aggregated)
    recovered = proc.count(r"stream_recovery returned \{'batchItemFailures': \[\]\}")
    sqs.send_message(QueueUrl=url, MessageBody=_range_message(endpoint, "ops-recover"))
    # stream_recovery read the range back from the stream and aggregated its order again.
    deadline = time.monotonic() + 60
    while proc.count(aggregated) <= before or (
        proc.count(r"stream_recovery returned \{'batchItemFailures': \[\]\}") <= recovered
    ):
        assert time.monotonic() < deadline, "\n".join(proc.lines[-40:])
        time.sleep(0.1)
    proc.wait_for(rf"sqs {TABLE}-stream-failures → stream_recovery: 1 message\(s\)")
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (left["ApproximateNumberOfMessages"], left["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
    code, listing = ops_json(runtime, "dead-letters")
    assert code == 0
    (stream_queue,) = [q for q in listing["queues"] if q["name"] == f"{TABLE}-stream-failures"]
    assert (stream_queue["exists"], stream_queue["messages"]) == (True, [])


def test_a_stream_range_in_a_failure_queue_is_resolved_to_its_order_and_redriven(
    runtime: Runtime,
) -> None:
    _, base, endpoint = runtime
    sqs = aws_client("sqs", endpoint)
    # A failure queue nothing consumes (the stream failure queue's own is consumed by
    # stream_recovery, above): the operator's view of a message waiting there.
    held = "ops-test-stream-failures"
    url = sqs.create_queue(QueueName=held)["QueueUrl"]
    other = sqs.create_queue(QueueName="ops-test-other-failures")["QueueUrl"]
    post(base, "ops-range", "Account Check", "passed")
    wait_for_view(base, "ops-range", lambda v: "deadline" in v)
    _, _, sequence = _stream_record(endpoint, "ops-range", "Account Check")
    sqs.send_message(QueueUrl=url, MessageBody=_range_message(endpoint, "ops-range"))
    sqs.send_message(QueueUrl=other, MessageBody="not an event")
    queues_args = ("--queue", held, "--queue", "ops-test-other-failures")

    for _ in range(2):  # listing never consumes
        code, listing = ops_json(runtime, "dead-letters", *queues_args)
        assert code == 0
        queues = {q["name"]: q for q in listing["queues"]}
        (message,) = queues[held]["messages"]
        assert (message["kind"], message["orderIds"], message["resolved"]) == (
            "stream-range",
            ["ops-range"],
            True,
        )
        assert message["range"]["start"] == sequence
        (foreign,) = queues["ops-test-other-failures"]["messages"]
        assert (foreign["resolved"], foreign["note"]) == (
            False,
            "not JSON; cannot tell which order",
        )
        assert "ops-range" in listing["orderIds"]

    code, text, _ = ops(runtime, "redrive", "--source", held, "--queue", held, "--dry-run")
    assert code == 0 and "dry run: order ops-range: would-publish [pending]" in text
    code, result = ops_json(runtime, "redrive", "--source", held, "--queue", held)
    assert code == 0
    assert result["orders"] == [
        {
            "orderId": "ops-range",
            "action": "published",
            "status": "pending",
            "detail": "re-aggregated and published",
        }
    ]
    assert result["entries"][0]["result"] == f"removed the message from {held}"
    code, out, _ = ops(runtime, "redrive", "--source", held, "--queue", held)
    assert code == 1 and "nothing to do" in out
    remaining = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert remaining["ApproximateNumberOfMessages"] == "0"
    assert remaining["ApproximateNumberOfMessagesNotVisible"] == "0"
    # The unreadable message elsewhere is skipped and left where it is.
    code, skipped = ops_json(
        runtime,
        "redrive",
        "--source",
        "ops-test-other-failures",
        "--queue",
        "ops-test-other-failures",
    )
    assert code == 1 and skipped["skipped"][0]["note"] == "not JSON; cannot tell which order"
    left = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "1"
    sqs.delete_queue(QueueUrl=other)
    sqs.delete_queue(QueueUrl=url)


def test_replay_republishes_the_event_and_the_targets_keep_one_outcome(runtime: Runtime) -> None:
    proc, base, _ = runtime
    post(base, "ops-replay", "Account Check", "passed")
    post(base, "ops-replay", "In Stock", "passed")
    first = wait_for_view(base, "ops-replay", lambda v: v.get("notified") is True)
    published = proc.count(r"\[order ops-replay\] aggregated event: status=approved")

    code, dry = ops_json(runtime, "replay", "--dry-run", "ops-replay")
    assert code == 0
    (order,) = dry["orders"]
    assert (order["action"], order["event"]["status"]) == ("would-publish", "approved")
    code, text, _ = ops(runtime, "replay", "ops-replay")
    assert (code, text) == (0, "order ops-replay: published [approved]: published\n")
    proc.wait_for(r"\[order ops-replay\] rule matched → invoice_processing")
    while proc.count(r"\[order ops-replay\] aggregated event: status=approved") <= published:
        proc.wait_for(r"\[order ops-replay\] aggregated event: status=approved")
    assert wait_for_view(base, "ops-replay", lambda v: True)["invoice"] == first["invoice"]


def test_wrong_stage_missing_region_or_credentials_are_one_line_errors() -> None:
    code, err = _fails("--stage", "staging", "pending")
    assert code == 2 and err.startswith("ops: unknown stage 'staging'; ") and "dev" in err
    code, err = _fails("--stage", "dev", "pending")
    assert code == 2 and err.startswith("ops: no AWS region for stage dev")
    code, err = _fails("--stage", "dev", "pending", env={"AWS_REGION": "eu-west-1"})
    assert code == 2 and err.startswith("ops: no AWS credentials for stage dev")
    code, err = _fails("pending")
    assert code == 2 and err.startswith("ops: say which deployment")
    code, err = _fails("--endpoint", f"http://127.0.0.1:{_free_port()}", "inspect", "7")
    assert code == 3 and "is not reachable; is the local runtime up" in err
    code, err = _fails("--endpoint", "http://127.0.0.1:1", "pending", "--limit", "0")
    assert code == 2 and "--limit: '0' must be at least 1" in err


def _fails(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    ran = run_ops(*args, env=env)
    assert ran.stdout == ""
    assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    return ran.code, ran.stderr
