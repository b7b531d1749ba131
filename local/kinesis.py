"""Kinesis stream → ``on_kinesis_record`` handlers, with the stream-mapping rules.

Lambda reads a Kinesis stream with the same event source mapping as a DynamoDB stream
(services-kinesis-create / services-kinesis-errors: ``BatchSize``,
``MaximumBatchingWindowInSeconds``, ``StartingPosition``, ``ParallelizationFactor``,
``BisectBatchOnFunctionError``, ``MaximumRetryAttempts``, ``MaximumRecordAgeInSeconds``,
``FunctionResponseTypes``, the on-failure destination), so :class:`KinesisReader` feeds
:class:`local.streams.StreamMapping`, which plays all of them. What differs is the
record and its keys:

* each record is shaped as Lambda delivers it (the Lambda developer guide's Kinesis
  example event): ``kinesis`` with ``kinesisSchemaVersion`` ``1.0``, ``partitionKey``,
  ``sequenceNumber``, ``data`` (base64) and ``approximateArrivalTimestamp`` (epoch
  seconds, a number); ``eventSource`` ``aws:kinesis``, ``eventVersion`` ``1.0``,
  ``eventID`` ``<shard id>:<sequence number>``, ``eventName`` ``aws:kinesis:record``,
  ``invokeIdentityArn``, ``awsRegion``, ``eventSourceARN``;
* order is kept per partition key (a Kinesis shard's order), so the partition key picks
  both the virtual shard and the ``ParallelizationFactor`` lane;
* a discarded batch is described under ``KinesisBatchInfo``;
* ``FilterCriteria`` patterns are matched on the ``data`` key only, with ``data`` decoded
  from base64 and parsed as JSON ("Kinesis event source mappings only support filtering
  on the data key", with-kinesis-filtering). A record whose data is not JSON has no
  ``data`` to match, so a pattern on ``data`` discards it (invocation-eventfiltering).

Example::

    reader = KinesisReader(kinesis_client, "clicks", region, "LATEST", role_arn)
    mapping = StreamMapping(settings, functions, reader, failures)
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from local.plugins import Hop as PluginHop
from local.streams import _SHARD, StreamReader

SHARD_ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST")


def kinesis_record(
    record: Mapping[str, Any],
    shard_id: str,
    stream_arn: str,
    region: str,
    role_arn: str,
) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda hands it to a function."""
    arrival = record.get("ApproximateArrivalTimestamp")
    data = record.get("Data", b"")
    sequence = str(record["SequenceNumber"])
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(
                data if isinstance(data, bytes) else str(data).encode()
            ).decode("ascii"),
            "approximateArrivalTimestamp": (
                arrival.timestamp() if isinstance(arrival, datetime) else float(arrival or 0)
            ),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
        # Not part of the record Lambda delivers; removed before invocation.
        _SHARD: shard_id,
    }


class KinesisReader(StreamReader):
    """Reads new records of one Kinesis stream, all shards, oldest first."""

    BATCH_INFO = "KinesisBatchInfo"

    def __init__(
        self,
        client: Any,
        stream_name: str,
        region: str,
        position: str = "LATEST",
        role_arn: str = "",
    ) -> None:
        if position not in SHARD_ITERATOR_TYPES:
            raise ValueError(
                f"StartingPosition {position!r}: the local runtime reads Kinesis from "
                "TRIM_HORIZON or LATEST"
            )
        summary = client.describe_stream_summary(StreamName=stream_name)
        self.stream_name = stream_name
        self._role_arn = role_arn
        # StreamReader's state, set up for this stream (its __init__ reads DynamoDB).
        self.stream_arn = summary["StreamDescriptionSummary"]["StreamARN"]
        self._client = client
        self._region = region
        self._position = position
        self._iterators: dict[str, str | None] = {}
        self._shards_checked = float("-inf")
        self.partition_key = None
        self._refresh_shards()
        self._position = "TRIM_HORIZON"

    def _refresh_shards(self) -> None:
        if time.monotonic() - self._shards_checked < 1.0:
            return
        self._shards_checked = time.monotonic()
        for shard in self._client.list_shards(StreamName=self.stream_name).get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamName=self.stream_name, ShardId=shard_id, ShardIteratorType=self._position
                )["ShardIterator"]

    def _record(self, raw: Mapping[str, Any], shard_id: str) -> dict[str, Any]:
        return kinesis_record(raw, shard_id, self.stream_arn, self._region, self._role_arn)

    def filtered_view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``{"data": <the record's data as JSON>}``, or ``{}`` when it is not JSON."""
        try:
            return {"data": json.loads(base64.b64decode(record["kinesis"]["data"]))}
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return {}

    def sequence_number(self, record: Mapping[str, Any]) -> str:
        number: str = record["kinesis"]["sequenceNumber"]
        return number

    def arrival(self, record: Mapping[str, Any]) -> float:
        arrival: float = record["kinesis"]["approximateArrivalTimestamp"]
        return arrival

    def lane_keys(self, record: Mapping[str, Any]) -> tuple[Any, Any]:
        key = record["kinesis"]["partitionKey"]
        return key, key

    def hop(self, function: str, record: Mapping[str, Any], result: str) -> PluginHop:
        """``[kinesis] fn (1 record) → received: <partition key> <sequence number>``."""
        data = record["kinesis"]
        visible = {k: v for k, v in record.items() if k != _SHARD}
        detail = f"{data['partitionKey']} {data['sequenceNumber']}"
        return PluginHop(function, "kinesis", 1, result, visible, detail)
