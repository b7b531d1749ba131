"""The events table: the one definition of its keys, attributes, index and stream.

Tests, the local runtime, ``scripts.bootstrap`` and the CloudFormation merge template all
build the table from :func:`create_table_request` / :func:`cloudformation_properties`.

Items (one per partition ``OrderID``):

* a **source event** per check, sort key = the check's name (``"In Stock"``), with
  ``Status`` (``passed``/``failed``), ``OccurredAt``, ``Revision``, optional ``Reason``;
* one **order record**, sort key :data:`ORDER_RECORD`, written by the app itself once
  the order is decided: the outcome (invoice or problem), the notification claim and its
  lease, and when the customer was told;
* at most one **declaration**, sort key :data:`DECLARATION_RECORD`, written once (by the
  API's ``PUT /orders/{id}`` or a direct writer): the order's own checks
  (:data:`CHECKS`), optional deadline (:data:`DUE_BY`) and :data:`STATUS` ``declared``
  (so the aggregator's stream filter passes it);
* at most one **dead-letter record**, sort key :data:`DEAD_LETTER_RECORD`, when the app
  parked the order because of a permanent fault (listed in the index's
  :data:`DEAD_LETTER_SHARD` partition).

The app's **deadline buckets** live in partitions of their own, ``#deadlines#<shard>``
(:func:`bucket_partition`): one item per aggregated batch, sort key
``<earliest deadline>#<batch id>`` (fixed-width time, so string order is time order),
whose :data:`BUCKET_ORDERS` map lists each order of the batch with its deadline. The
timeout sweep Queries the due ones (no index, no Scan) and deletes each once settled.
"""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "OrderID"
SORT_KEY = "EventName"
# Sort key of the app's own per-order record. Check names can never start with "#".
ORDER_RECORD = "#order"
STREAM_VIEW_TYPE = "NEW_IMAGE"

# Attributes of a source event item.
STATUS = "Status"
REASON = "Reason"
OCCURRED_AT = "OccurredAt"
RECORDED_AT = "RecordedAt"
REVISION = "Revision"
DIGEST = "Digest"

# Attributes of the order record. ``Deadline``/``PendingShard``/``FirstSeenAt`` are the
# index entry of an order opened before the deadline buckets (older tables): still read,
# and removed once the order is done, never written for a new order.
DEADLINE = "Deadline"
PENDING_SHARD = "PendingShard"
FIRST_SEEN_AT = "FirstSeenAt"
OUTCOME = "Outcome"
OUTCOME_AT = "OutcomeAt"
INVOICE = "Invoice"
PROBLEM = "Problem"
NOTIFY_LEASE = "NotifyLeaseUntil"
NOTIFIED_AT = "NotifiedAt"

# The app's dead-letter record of an order it cannot process (a permanent fault): sort key
# DEAD_LETTER_RECORD, listed in the sparse index under partition DEAD_LETTER_SHARD (its
# Deadline is the time it was parked), so operators find them with a Query, never a Scan.
DEAD_LETTER_RECORD = "#dead-letter"
DEAD_LETTER_SHARD = "dead-letters"
FAULT = "Fault"
PARKED_AT = "ParkedAt"

# The order's declaration: what it waits for (a list of check names) and its own deadline.
DECLARATION_RECORD = "#declaration"
CHECKS = "Checks"
DUE_BY = "DueBy"
DECLARED_AT = "DeclaredAt"

# Sparse index: dead-letter records (and orders opened before the deadline buckets)
# carry PendingShard/Deadline.
PENDING_INDEX = "PendingByDeadline"

# Deadline buckets: partition key DEADLINE_BUCKETS + "#" + shard, sort key
# "<fixed-width earliest deadline>#<batch id>", BUCKET_ORDERS = {order id: deadline}.
DEADLINE_BUCKETS = "#deadlines"
BUCKET_ORDERS = "Orders"


def bucket_partition(shard: str) -> str:
    """The partition key of one shard's deadline buckets."""
    return f"{DEADLINE_BUCKETS}#{shard}"


def create_table_request(table_name: str) -> dict[str, Any]:
    """Arguments for ``dynamodb.create_table`` (on-demand, stream on)."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (PARTITION_KEY, SORT_KEY, PENDING_SHARD, DEADLINE)
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": PENDING_INDEX,
                "KeySchema": [
                    {"AttributeName": PENDING_SHARD, "KeyType": "HASH"},
                    {"AttributeName": DEADLINE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    }


def cloudformation_properties(table_name: Any) -> dict[str, Any]:
    """``AWS::DynamoDB::Table`` properties built from the same definition.

    ``table_name`` may be a CloudFormation expression (e.g. ``{"Fn::Sub": ...}``).
    """
    request = create_table_request("")
    return {
        "TableName": table_name,
        "KeySchema": request["KeySchema"],
        "AttributeDefinitions": request["AttributeDefinitions"],
        "GlobalSecondaryIndexes": request["GlobalSecondaryIndexes"],
        "BillingMode": request["BillingMode"],
        "StreamSpecification": {"StreamViewType": STREAM_VIEW_TYPE},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
