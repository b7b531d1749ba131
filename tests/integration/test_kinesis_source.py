"""``on_kinesis_record`` on the local runtime: Kinesis records on the stream mapping.

A real ``python -m local run`` process serves the sample app in ``apps/clicks``; the test
puts records on its stream and reads what the handler wrote. The rules:

* with-kinesis (the example event): ``kinesis`` with ``kinesisSchemaVersion``,
  ``partitionKey``, ``sequenceNumber``, ``data`` (base64) and
  ``approximateArrivalTimestamp``; ``eventSource`` ``aws:kinesis``, ``eventVersion``,
  ``eventID`` (``shardId:sequenceNumber``), ``eventName`` ``aws:kinesis:record``,
  ``invokeIdentityArn``, ``awsRegion``, ``eventSourceARN``; records in order per shard;
* services-kinesis-errors: after ``MaximumRetryAttempts`` retries the batch is
  discarded and the on-failure destination gets an invocation record with
  ``KinesisBatchInfo`` (shard id, first and last sequence numbers, batch size, stream
  ARN), ``requestContext`` and ``responseContext``;
* with-kinesis-filtering: "Kinesis event source mappings only support filtering on the
  data key", matched on the data decoded as JSON; a record whose data is not JSON is
  discarded by a pattern on data (invocation-eventfiltering).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel

from tests.integration.sources_support import Entry, SampleApp, records

TALLY = "click-tally"
STREAM = "page-clicks"


@pytest.fixture(scope="module")
def clicks() -> Iterator[SampleApp]:
    app = SampleApp("clicks")
    try:
        yield app
    finally:
        app.stop()


def _pages(found: list[Entry]) -> list[str]:
    return [page for entry in found for page in entry.context["pages"]]


def test_records_reach_the_handler_in_kinesis_shape_in_order(clicks: SampleApp) -> None:
    kinesis = clicks.client("kinesis")
    pages = [f"/item/{i}" for i in range(6)]
    put = [
        kinesis.put_record(StreamName=STREAM, Data=page.encode(), PartitionKey="visitor-1")
        for page in pages
    ]
    entries = clicks.wait_for(TALLY, "count_clicks", lambda f: set(pages) <= set(_pages(f)))
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    delivered = [
        r for r in records(entries) if base64.b64decode(r["kinesis"]["data"]).decode() in pages
    ]
    delivered.sort(key=lambda r: int(r["kinesis"]["sequenceNumber"]))
    assert [base64.b64decode(r["kinesis"]["data"]).decode() for r in delivered] == pages
    assert [r["kinesis"]["sequenceNumber"] for r in delivered] == [p["SequenceNumber"] for p in put]
    for entry in entries:
        parse(event=entry.event, model=KinesisDataStreamModel)  # Powertools' model
        assert entry.context["function_name"] == "click-counter-local-count_clicks"
        assert 0 < entry.context["remaining_ms"] <= 30_000  # lambda_timeout 30
        assert entry.shift == "shop"
    for record, sent in zip(delivered, put, strict=True):
        assert record["eventSource"] == "aws:kinesis"
        assert record["eventName"] == "aws:kinesis:record"
        assert record["eventVersion"] == "1.0"
        assert record["eventSourceARN"] == arn
        assert record["awsRegion"] == "us-east-1"
        assert record["eventID"] == f"{sent['ShardId']}:{sent['SequenceNumber']}"
        assert record["invokeIdentityArn"].startswith("arn:aws:iam::123456789012:role/")
        data = record["kinesis"]
        assert (data["kinesisSchemaVersion"], data["partitionKey"]) == ("1.0", "visitor-1")
        assert isinstance(data["approximateArrivalTimestamp"], float)
        assert abs(data["approximateArrivalTimestamp"] - time.time()) < 3600


def test_a_batch_that_keeps_failing_is_discarded_to_the_on_failure_queue(
    clicks: SampleApp,
) -> None:
    kinesis = clicks.client("kinesis")
    sent = kinesis.put_record(StreamName=STREAM, Data=b"/broken", PartitionKey="visitor-2")
    sqs = clicks.client("sqs")
    url = sqs.get_queue_url(QueueName="click-failures")["QueueUrl"]
    message = None
    deadline = time.monotonic() + 60
    while message is None and time.monotonic() < deadline:
        page = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        for found in page.get("Messages", []):
            message = json.loads(found["Body"])
    assert message is not None, "\n".join(clicks.proc.lines[-30:])
    info = message["KinesisBatchInfo"]
    assert info["shardId"] == sent["ShardId"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sent["SequenceNumber"]
    assert info["batchSize"] == 1
    assert info["streamArn"].endswith(f":stream/{STREAM}")
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 2  # one try, one retry
    assert message["responseContext"]["functionError"] == "Unhandled"
    tries = [e for e in clicks.entries(TALLY, "count_clicks") if "/broken" in e.context["pages"]]
    assert len(tries) == 2


def test_filter_criteria_match_the_records_json_data(clicks: SampleApp) -> None:
    kinesis = clicks.client("kinesis")
    sent = [
        b'{"kind": "purchase", "n": 1}',
        b'{"kind": "view", "n": 2}',
        b"kind purchase, not JSON",
        b'{"kind": "purchase", "n": 3}',
        b'{"kind": "purchase", "n": 4}',
    ]
    for data in sent:
        kinesis.put_record(StreamName="purchases", Data=data, PartitionKey="shopper-1")
    # One partition key keeps its order, so once n=4 is in, every record before it was
    # either delivered or filtered out.
    entries = clicks.wait_for(
        TALLY, "count_purchases", lambda f: any('"n": 4' in p for p in _pages(f))
    )
    # (the journal is read by a Scan, so batches come back in any order)
    assert sorted(_pages(entries)) == sorted(d.decode() for d in (sent[0], sent[3], sent[4]))
