"""Stream triggers on the local runtime follow Lambda's documented rules.

A real ``python -m local run`` process serves the sample app in ``apps/streams`` (one
table and one handler per rule); the tests write items to its tables over loopback and
read what the handlers print. The rules, from the Lambda developer guide:

* services-ddb-params: ``ParallelizationFactor`` (concurrent batches per shard, in order
  per item), ``StartingPosition`` (``LATEST``), ``MaximumRetryAttempts``,
  ``MaximumRecordAgeInSeconds``;
* services-dynamodb-errors: after the retries or the record age run out Lambda discards
  the batch and sends an invocation record (``DDBStreamBatchInfo``, ``requestContext``,
  ``responseContext``) to the ``OnFailure`` destination;
* services-ddb-batchfailurereporting: without ``ReportBatchItemFailures`` in
  ``FunctionResponseTypes`` Lambda ignores a returned ``batchItemFailures`` list;
* invocation-async-error-handling: a timeout is a function error;
* python-context: the context object.

The runtime's clock runs 60 times faster here (``--time-scale 60``), so a 60-second record
age or timeout is reached in about a second.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
)

from tests.integration.test_local_runtime import RuntimeProcess

APP = Path(__file__).parent / "apps" / "streams"
FAILURE_QUEUE = "stream-rules-failures"
SESSION = boto3.session.Session(
    region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
)


class StreamApp:
    def __init__(self, proc: RuntimeProcess, endpoint: str) -> None:
        self.proc = proc
        self.dynamodb = SESSION.client("dynamodb", endpoint_url=endpoint)
        self.sqs = SESSION.client("sqs", endpoint_url=endpoint)
        self.received: list[dict[str, Any]] = []

    def put(self, table: str, sk: str, v: int = 0, pk: str = "p") -> None:
        self.dynamodb.put_item(
            TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": str(v)}}
        )

    def calls(self, handler: str) -> list[dict[str, Any]]:
        found = []
        for line in list(self.proc.lines):
            if "HANDLER " in line:
                call, _ = json.JSONDecoder().raw_decode(line.split("HANDLER ", 1)[1])
                if call["handler"] == handler:
                    found.append(call)
        return found

    def failure_messages(self, table: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The on-failure messages about ``table``'s stream; waits (bounded) for one."""
        url = self.sqs.get_queue_url(QueueName=FAILURE_QUEUE)["QueueUrl"]
        for _ in range(int(timeout)):
            page = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in page.get("Messages", []):
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            mine = [
                m
                for m in self.received
                if f":table/{table}/" in m["DDBStreamBatchInfo"]["streamArn"]
            ]
            if mine:
                return mine
        raise AssertionError(f"no message about {table}:\n" + "\n".join(self.proc.lines[-40:]))


def _until(check: Any, timeout: float = 30.0) -> None:
    """Wait (bounded) until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _start(*args: str) -> tuple[RuntimeProcess, str]:
    proc = RuntimeProcess("--project-dir", str(APP), *args)
    found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)", 60)
    return proc, found.group(2)


@pytest.fixture(scope="module")
def streams() -> Iterator[StreamApp]:
    proc, endpoint = _start("--time-scale", "60")
    try:
        yield StreamApp(proc, endpoint)
    finally:
        assert proc.stop() == 0


def test_concurrent_batches_keep_each_item_in_order(streams: StreamApp) -> None:
    items, versions = 8, 5
    for v in range(versions):
        for i in range(items):
            streams.put("ordered", f"item-{i}", v)

    def ends() -> list[dict[str, Any]]:
        return [c for c in streams.calls("ordered") if c["phase"] == "end"]

    _until(lambda: sum(len(c["records"]) for c in ends()) >= items * versions)
    seen: dict[str, list[int]] = defaultdict(list)
    for call in ends():
        for record in call["records"]:
            seen[record["sk"]].append(int(record["v"]))
    assert dict(seen) == {f"item-{i}": list(range(versions)) for i in range(items)}
    # In the order the handlers said it: batches ran side by side (ParallelizationFactor
    # 4), never two holding the same item at once.
    in_flight: dict[str, set[str]] = {}
    most = 0
    for call in streams.calls("ordered"):
        keys = {r["sk"] for r in call["records"]}
        if call["phase"] == "start":
            assert not any(keys & held for held in in_flight.values()), call
            in_flight[call["request"]] = keys
            most = max(most, len(in_flight))
        else:
            del in_flight[call["request"]]
    assert most > 1


def test_discard_after_the_retry_limit_sends_the_whole_batch_to_the_on_failure_queue(
    streams: StreamApp,
) -> None:
    streams.put("failing", "bad-1")
    streams.put("failing", "good-1")
    messages = streams.failure_messages("failing")
    assert len(messages) == 1
    message = messages[0]
    parse(event=message, model=DynamoDBStreamLambdaOnFailureDestinationModel)
    info = message["DDBStreamBatchInfo"]
    calls = streams.calls("failing")
    # MaximumRetryAttempts 2: the first attempt and two retries, all of the same batch.
    assert len(calls) == 3
    assert len({tuple(r["seq"] for r in c["records"]) for c in calls}) == 1
    batch = calls[0]["records"]
    assert info["batchSize"] == len(batch) == 2
    assert info["startSequenceNumber"] == batch[0]["seq"]
    assert info["endSequenceNumber"] == batch[-1]["seq"]
    assert info["shardId"].startswith("shardId-")
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["requestContext"]["functionArn"].endswith(":function:stream-rules-local-failing")
    assert message["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    # The shard moves on past the discarded batch.
    streams.put("failing", "good-2")
    streams.proc.wait_for(r"failing returned None", 30)


def test_records_older_than_the_maximum_age_are_discarded(streams: StreamApp) -> None:
    streams.put("aged", "old")
    messages = streams.failure_messages("aged")
    assert [m["DDBStreamBatchInfo"]["batchSize"] for m in messages] == [1]
    assert messages[0]["requestContext"]["condition"] == "MaximumRecordAgeExceeded"
    # MaximumRetryAttempts is unlimited here: only the age ended the retries.
    assert len(streams.calls("aged")) >= 1


def test_a_failure_list_is_ignored_without_report_batch_item_failures(
    streams: StreamApp,
) -> None:
    streams.put("unreported", "one")
    _until(lambda: streams.proc.count(r"unreported returned \{'batchItemFailures'") == 1)
    streams.put("unreported", "two")
    _until(lambda: streams.proc.count(r"unreported returned \{'batchItemFailures'") == 2)
    # Each record was delivered once: the reported failures were not retried.
    delivered = [r["sk"] for c in streams.calls("unreported") for r in c["records"]]
    assert sorted(delivered) == ["one", "two"]
    assert streams.proc.count(r"unreported: retry") == 0


def test_a_handler_past_its_timeout_is_a_function_error(streams: StreamApp) -> None:
    streams.put("slow", "sleepy")
    streams.proc.wait_for(r"slow raised on 1 record\(s\): Task timed out after 60\.00 seconds", 30)
    messages = streams.failure_messages("slow")
    assert messages[0]["requestContext"]["approximateInvokeCount"] == 2
    assert all(c["remaining_ms"] <= 60_000 for c in streams.calls("slow"))


def test_each_function_gets_its_own_environment(streams: StreamApp) -> None:
    streams.put("env", "own")
    streams.put("latest", "other")
    _until(lambda: bool(streams.calls("env")) and bool(streams.calls("latest")))
    # Stage variables for all; lambda_functions.env.environment_variables for env only.
    assert [(c["colour"], c["shape"]) for c in streams.calls("env")] == [("blue", "round")]
    assert {c["shape"] for c in streams.calls("latest")} == {None}


def test_handlers_get_a_lambda_context_object(streams: StreamApp) -> None:
    streams.put("env", "x")
    _until(lambda: any(r["sk"] == "x" for c in streams.calls("env") for r in c["records"]))
    call = next(c for c in streams.calls("env") if c["records"][0]["sk"] == "x")
    assert call["function_name"] == "stream-rules-local-env"
    assert call["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:stream-rules-local-env"
    assert call["memory"] == 256
    assert 0 < call["remaining_ms"] <= 60_000
    assert len(call["request"]) == 36


def test_latest_starts_at_the_end_of_the_stream() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        template = json.loads((APP / ".chalice" / "merge-template.json").read_text())
        table = template["Resources"]["LatestTable"]["Properties"]
        dynamodb = SESSION.client("dynamodb", endpoint_url=endpoint)
        dynamodb.create_table(
            **{k: v for k, v in table.items() if k != "StreamSpecification"},
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        dynamodb.put_item(TableName="latest", Item={"pk": {"S": "p"}, "sk": {"S": "before"}})
        proc = RuntimeProcess("--project-dir", str(APP), "--endpoint", endpoint)
        try:
            proc.wait_for(r"serving (http://\S+) ", 60)
            dynamodb.put_item(TableName="latest", Item={"pk": {"S": "p"}, "sk": {"S": "after"}})
            proc.wait_for(r"latest returned None", 30)
            app = StreamApp(proc, endpoint)
            assert [r["sk"] for c in app.calls("latest") for r in c["records"]] == ["after"]
        finally:
            assert proc.stop() == 0
    finally:
        server.stop()


def test_duplicate_rate_delivers_stream_batches_again() -> None:
    proc, endpoint = _start("--duplicate-rate", "1")
    try:
        app = StreamApp(proc, endpoint)
        app.put("env", "twice")
        _until(lambda: len(app.calls("env")) == 2)
        first, second = app.calls("env")
        assert first["records"] == second["records"]
        proc.wait_for(r"stream batch → env: 1 record\(s\) re-delivered")
    finally:
        assert proc.stop() == 0
