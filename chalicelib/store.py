"""The event store: every DynamoDB call the app makes, and nothing else.

Reads are one strongly consistent ``Query`` on the order's partition (never a Scan).
Writes are conditional, so retries and races never double anything:

* a source result replaces the stored one only if its revision is newer;
* the order record gets its outcome once, and the customer's notification is claimed
  with a lease and marked told once.

Deadline buckets (one item per aggregated batch, listing its orders with their
deadlines) are plain PutItems under partitions of their own; the timeout sweep deletes
each once its orders need nothing more.

Example::

    store = EventStore(aws.dynamodb(), settings.table_name)
    store.record_result("7", result, explicit_time=True)   # -> RecordResponse
    store.load_order("7")                                   # -> Order | None
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib import table
from chalicelib.domain import (
    DECLARED,
    INVOICED,
    OUTCOME_KINDS,
    CheckResult,
    Declaration,
    Order,
    Outcome,
    OutcomeKind,
    first_arrival,
    format_time,
    parse_time,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

RecordState = Literal["recorded", "changed", "duplicate", "stale"]


class MalformedItem(ValueError):
    """A stored item does not follow the item schema (e.g. another writer's)."""


@dataclass(frozen=True)
class RecordResponse:
    state: RecordState
    stored: CheckResult

    @property
    def applied(self) -> bool:
        return self.state in ("recorded", "changed")


def to_python(image: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB-JSON item (stream image or client response) as plain Python.

    Every attribute of this table is a string, so that case skips the deserializer.
    """
    return {
        key: value["S"] if "S" in value else _deserializer.deserialize(value)
        for key, value in image.items()
    }


def result_item(order_id: str, result: CheckResult) -> dict[str, Any]:
    """The item of one source result, as documented in the README."""
    item: dict[str, Any] = {
        table.PARTITION_KEY: order_id,
        table.SORT_KEY: result.name,
        table.STATUS: result.status,
        table.OCCURRED_AT: format_time(result.occurred_at),
        table.REVISION: result.revision,
        table.DIGEST: result.digest,
    }
    if result.reason:
        item[table.REASON] = result.reason
    if result.recorded_at:
        item[table.RECORDED_AT] = format_time(result.recorded_at)
    return item


def result_from_item(item: Mapping[str, Any]) -> CheckResult:
    """Parse a source-event item; raise :class:`MalformedItem` if it is not one."""
    try:
        name = item[table.SORT_KEY]
        status = item[table.STATUS]
        occurred = parse_time(item[table.OCCURRED_AT])
        recorded = item.get(table.RECORDED_AT)
        reason = item.get(table.REASON)
        if not isinstance(name, str) or status not in ("passed", "failed"):
            raise ValueError("not a check result")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("reason is not a string")
        return CheckResult(
            name=name,
            status=status,
            occurred_at=occurred,
            reason=reason,
            recorded_at=parse_time(recorded) if isinstance(recorded, str) else None,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise MalformedItem(f"not a source event item: {err}") from None


def declaration_item(order_id: str, declaration: Declaration) -> dict[str, Any]:
    """The item of an order's declaration, as documented in the README."""
    item: dict[str, Any] = {
        table.PARTITION_KEY: order_id,
        table.SORT_KEY: table.DECLARATION_RECORD,
        table.STATUS: DECLARED,
        table.CHECKS: list(declaration.checks),
    }
    if declaration.deadline is not None:
        item[table.DUE_BY] = format_time(declaration.deadline)
    if declaration.declared_at is not None:
        item[table.DECLARED_AT] = format_time(declaration.declared_at)
    return item


def declaration_from_item(item: Mapping[str, Any]) -> Declaration:
    """Parse a declaration item; raise :class:`MalformedItem` naming what is wrong."""
    checks = item.get(table.CHECKS)
    if isinstance(checks, (set, frozenset)):
        checks = sorted(checks)
    if not isinstance(checks, list) or not checks or not all(isinstance(c, str) for c in checks):
        raise MalformedItem(f"{table.CHECKS} must be a non-empty list of check names")
    times: dict[str, datetime | None] = {}
    for attribute in (table.DUE_BY, table.DECLARED_AT):
        value = item.get(attribute)
        try:
            times[attribute] = None if value is None else parse_time(value)
        except (TypeError, ValueError):
            raise MalformedItem(f"{attribute} {str(value)[:40]!r} is not a time") from None
    return Declaration(tuple(dict.fromkeys(checks)), times[table.DUE_BY], times[table.DECLARED_AT])


def outcome_from_item(item: Mapping[str, Any]) -> Outcome | None:
    kind = item.get(table.OUTCOME)
    if kind not in OUTCOME_KINDS:
        return None
    outcome_kind: OutcomeKind = kind
    invoice = item.get(table.INVOICE)
    problem = item.get(table.PROBLEM)
    return Outcome(
        kind=outcome_kind,
        at=parse_time(item[table.OUTCOME_AT]),
        invoice=json.loads(invoice) if invoice else None,
        problem=json.loads(problem) if problem else None,
    )


def _order_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of the app's order record; raise ``ValueError`` naming a corrupt one."""
    fields: dict[str, Any] = {}
    for attribute in (table.DEADLINE, table.NOTIFY_LEASE):
        value = item.get(attribute)
        if value is None:
            fields[attribute] = None
            continue
        try:
            fields[attribute] = parse_time(value)
        except (TypeError, ValueError):
            raise ValueError(f"{attribute} {str(value)[:40]!r} is not a time") from None
    kind = item.get(table.OUTCOME)
    if kind is not None and kind not in OUTCOME_KINDS:
        raise ValueError(f"{table.OUTCOME} {str(kind)[:40]!r} is not an outcome")
    try:
        fields[table.OUTCOME] = outcome_from_item(item)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the outcome cannot be read: {err}") from None
    return fields


def order_from_items(
    order_id: str, items: list[dict[str, Any]], order_timeout: timedelta | None = None
) -> Order:
    """Build an :class:`Order` from its items. Never raises: an item that cannot be read
    is named in ``problems`` (and, for the app's own order record, ``record_corrupt``).

    Its ``deadline`` is ``order_timeout`` after its first stored result arrived
    (:func:`chalicelib.domain.first_arrival`), or the deadline an older table's order
    record was opened with; a declared deadline wins over both
    (:func:`chalicelib.policy.deadline_of`)."""
    results: dict[str, CheckResult] = {}
    problems: list[str] = []
    record: dict[str, Any] = {}
    corrupt = False
    notified = False
    parked: str | None = None
    declaration: Declaration | None = None
    for item in items:
        sort_key = item.get(table.SORT_KEY)
        if sort_key == table.ORDER_RECORD:
            notified = table.NOTIFIED_AT in item
            try:
                record = _order_record(item)
            except ValueError as err:
                problems.append(f"order record: {err}")
                corrupt = True
            continue
        if sort_key == table.DEAD_LETTER_RECORD:
            parked = str(item.get(table.FAULT, "unknown"))
            continue
        if sort_key == table.DECLARATION_RECORD:
            try:
                declaration = declaration_from_item(item)
            except MalformedItem as err:
                # What the order waits for is unknown: nothing may be decided for it.
                problems.append(f"declaration: {err}")
                corrupt = True
            continue
        try:
            result = result_from_item(item)
        except MalformedItem as err:
            problems.append(f"item {str(sort_key)[:64]!r}: {err}")
            continue
        results[result.name] = result
    deadline = record.get(table.DEADLINE)
    arrived = first_arrival(results.values())
    if deadline is None and order_timeout is not None and arrived is not None:
        deadline = arrived + order_timeout
    return Order(
        order_id,
        results,
        outcome=record.get(table.OUTCOME),
        deadline=deadline,
        notified=notified,
        notify_lease=record.get(table.NOTIFY_LEASE),
        problems=tuple(problems),
        record_corrupt=corrupt,
        parked=parked,
        declaration=declaration,
    )


def shard_name(number: int) -> str:
    return f"pending-{number}"


def pending_shard(order_id: str, shards: int) -> str:
    """Spread pending orders over ``shards`` index partitions."""
    number = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:4], "big") % shards
    return shard_name(number)


def _failed_item(err: ClientError) -> dict[str, Any]:
    """The item returned with a failed condition (``ReturnValuesOnConditionCheckFailure``)."""
    item: Any = err.response.get("Item", {})
    return dict(item)


def _is_conditional_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class EventStore:
    """The events table, seen through the calls the app needs."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, order_timeout_seconds: int | None = None
    ) -> None:
        """``order_timeout_seconds`` (the stage's ``ORDER_TIMEOUT_SECONDS``) gives each
        loaded order its deadline; without it an order has only a stored or declared one."""
        self._client = client
        self._table = table_name
        self._timeout = (
            None if order_timeout_seconds is None else timedelta(seconds=order_timeout_seconds)
        )

    def record_result(
        self, order_id: str, result: CheckResult, explicit_time: bool
    ) -> RecordResponse:
        """Store ``result`` unless a newer (or, without a time, the same) one is stored."""
        names = {"#rev": table.REVISION}
        values = {":rev": result.revision}
        condition = "attribute_not_exists(#rev) OR #rev < :rev"
        if not explicit_time:
            names["#digest"] = table.DIGEST
            values[":digest"] = result.digest
            condition = "attribute_not_exists(#rev) OR (#rev < :rev AND #digest <> :digest)"
        try:
            response = self._client.put_item(
                TableName=self._table,
                Item=_serialize(result_item(order_id, result)),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_serialize(values),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not _is_conditional_failure(err):
                raise
            stored = result_from_item(to_python(_failed_item(err)))
            same = stored.revision == result.revision or (
                not explicit_time and stored.digest == result.digest
            )
            return RecordResponse("duplicate" if same else "stale", stored)
        state: RecordState = "changed" if response.get("Attributes") else "recorded"
        return RecordResponse(state, result)

    def declare(self, order_id: str, declaration: Declaration) -> tuple[bool, Declaration]:
        """Store the order's declaration unless one is stored (one conditional PutItem).

        Returns whether this call stored it, and the stored declaration. Raises
        :class:`MalformedItem` if the stored one cannot be read.
        """
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_serialize(declaration_item(order_id, declaration)),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": table.PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not _is_conditional_failure(err):
                raise
            return False, declaration_from_item(to_python(_failed_item(err)))
        return True, declaration

    def load_order(self, order_id: str) -> Order | None:
        """All items of one order: one strongly consistent Query (paged if huge)."""
        items = self.order_items(order_id)
        return order_from_items(order_id, items, self._timeout) if items else None

    def order_items(self, order_id: str) -> list[dict[str, Any]]:
        """Every stored item of one order as plain Python, with attributes the
        :class:`Order` does not carry (for operators: ``python -m ops inspect``). One
        strongly consistent Query, paged if huge; build the order with
        :func:`order_from_items`."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": table.PARTITION_KEY},
            "ExpressionAttributeValues": {":pk": {"S": order_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            items.extend(to_python(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close_order(
        self, order_id: str, outcome: Outcome, notify: NotifyClaim | None = None
    ) -> tuple[Outcome, bool]:
        """Record ``outcome`` unless one exists. Returns the stored one and if it is new.

        An invoice (``notify`` given) claims the customer's notification in the same
        write; a claim that is never completed is found again by the timeout sweep, which
        keeps the order in a deadline bucket until it was told. Neither touches an index
        (a problem outcome removes the index entry of an order opened before the deadline
        buckets; for any other order there is none, so nothing is written to the index).
        """
        names = {"#outcome": table.OUTCOME, "#at": table.OUTCOME_AT}
        values: dict[str, Any] = {":kind": outcome.kind, ":at": format_time(outcome.at)}
        assignments = ["#outcome = :kind", "#at = :at"]
        for attribute, document in (
            (table.INVOICE, outcome.invoice),
            (table.PROBLEM, outcome.problem),
        ):
            if document is not None:
                names["#" + attribute] = attribute
                values[":" + attribute] = json.dumps(document, sort_keys=True)
                assignments.append(f"#{attribute} = :{attribute}")
        if notify is None:
            names.update({"#deadline": table.DEADLINE, "#shard": table.PENDING_SHARD})
            expression = "SET " + ", ".join(assignments) + " REMOVE #deadline, #shard"
        else:
            names["#lease"] = table.NOTIFY_LEASE
            values[":lease"] = format_time(notify.lease_until)
            expression = "SET " + ", ".join([*assignments, "#lease = :lease"])
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(order_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(#outcome)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_serialize(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not _is_conditional_failure(err):
                raise
            existing = outcome_from_item(to_python(_failed_item(err)))
            if existing is None:
                raise
            return existing, False
        return outcome, True

    def claim_notification(self, order_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take over the notification of an invoiced order nobody is telling right now:
        not yet told, and no claim, or one whose lease ran out. True if this call won."""
        return self._update_record(
            order_id,
            "SET #lease = :lease",
            "attribute_exists(#outcome) AND attribute_not_exists(#notified) "
            "AND (attribute_not_exists(#lease) OR #lease < :now)",
            {
                "#outcome": table.OUTCOME,
                "#notified": table.NOTIFIED_AT,
                "#lease": table.NOTIFY_LEASE,
            },
            {":lease": format_time(lease_until), ":now": format_time(now)},
        )

    def release_notification(self, order_id: str) -> None:
        """Give a claim back after the notifier failed, so a retry may take it at once."""
        self._update_record(
            order_id,
            "REMOVE #lease",
            "attribute_not_exists(#notified)",
            {"#lease": table.NOTIFY_LEASE, "#notified": table.NOTIFIED_AT},
        )

    def mark_notified(self, order_id: str, now: datetime) -> None:
        """The customer was told: end the claim (and remove the index entry of an order
        opened before the deadline buckets; a new order has none, so no index write)."""
        self._client.update_item(
            TableName=self._table,
            Key=_key(order_id),
            UpdateExpression=(
                "SET #notified = if_not_exists(#notified, :now) REMOVE #lease, #deadline, #shard"
            ),
            ExpressionAttributeNames={
                "#notified": table.NOTIFIED_AT,
                "#lease": table.NOTIFY_LEASE,
                "#deadline": table.DEADLINE,
                "#shard": table.PENDING_SHARD,
            },
            ExpressionAttributeValues=_serialize({":now": format_time(now)}),
        )

    def due_orders(
        self, shard: str, now: datetime, start: dict[str, Any] | None = None, limit: int = 500
    ) -> tuple[list[str], dict[str, Any] | None]:
        """One page of the orders of one index shard whose deadline has passed, and where
        the next page starts (``None`` after the last): orders opened before the deadline
        buckets, in older tables. Eventually consistent: the sweep re-reads each order
        before acting."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": table.PENDING_INDEX,
            "KeyConditionExpression": "#shard = :shard AND #deadline <= :now",
            "ExpressionAttributeNames": {
                "#shard": table.PENDING_SHARD,
                "#deadline": table.DEADLINE,
            },
            "ExpressionAttributeValues": _serialize({":shard": shard, ":now": format_time(now)}),
            "Limit": limit,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = self._client.query(**kwargs)
        ids = [to_python(item)[table.PARTITION_KEY] for item in page.get("Items", [])]
        return ids, page.get("LastEvaluatedKey")

    def put_bucket(self, shard: str, deadlines: Mapping[str, datetime], bucket_id: str) -> str:
        """Write one deadline bucket listing ``deadlines`` (order id -> deadline) under
        ``shard``; return its sort key. One PutItem on the base table: no index write."""
        sort_key = bucket_sort_key(min(deadlines.values()), bucket_id)
        self._client.put_item(
            TableName=self._table,
            Item=_serialize(
                {
                    table.PARTITION_KEY: table.bucket_partition(shard),
                    table.SORT_KEY: sort_key,
                    table.BUCKET_ORDERS: {
                        order_id: format_time(deadline) for order_id, deadline in deadlines.items()
                    },
                }
            ),
        )
        return sort_key

    def due_buckets(
        self, shard: str, now: datetime, start: dict[str, Any] | None = None, limit: int = 10
    ) -> tuple[list[DeadlineBucket], dict[str, Any] | None]:
        """One page of the buckets of ``shard`` whose earliest deadline is at or before
        ``now``, oldest first, and where the next page starts (``None`` after the last).
        A strongly consistent Query on the bucket partition (never a Scan)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND #sk < :bound",
            "ExpressionAttributeNames": {"#pk": table.PARTITION_KEY, "#sk": table.SORT_KEY},
            # "<time>#<id>" < "<now>$" for every time <= now ("#" sorts just before "$").
            "ExpressionAttributeValues": _serialize(
                {":pk": table.bucket_partition(shard), ":bound": format_time(now) + "$"}
            ),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = self._client.query(**kwargs)
        buckets = [bucket_from_item(to_python(item)) for item in page.get("Items", [])]
        return buckets, page.get("LastEvaluatedKey")

    def delete_bucket(self, bucket: DeadlineBucket) -> None:
        self._client.delete_item(
            TableName=self._table,
            Key=_serialize(
                {
                    table.PARTITION_KEY: table.bucket_partition(bucket.shard),
                    table.SORT_KEY: bucket.sort_key,
                }
            ),
        )

    def settled(self, order_ids: Iterable[str], attempts: int = 3) -> set[str]:
        """The orders among ``order_ids`` whose record says they need nothing more
        (:func:`is_settled`): ``BatchGetItem`` of their order records, 100 keys a call,
        eventually consistent. A key DynamoDB leaves unprocessed counts as not settled
        (the caller then reads that order in full)."""
        ids = list(dict.fromkeys(order_ids))
        found: set[str] = set()
        for start in range(0, len(ids), 100):
            keys: list[dict[str, Any]] = [_key(order_id) for order_id in ids[start : start + 100]]
            for _ in range(attempts):
                response = self._client.batch_get_item(
                    RequestItems={
                        self._table: {
                            "Keys": keys,
                            "ProjectionExpression": "#pk, #outcome, #notified",
                            "ExpressionAttributeNames": {
                                "#pk": table.PARTITION_KEY,
                                "#outcome": table.OUTCOME,
                                "#notified": table.NOTIFIED_AT,
                            },
                        }
                    }
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    record = to_python(item)
                    if is_settled(record):
                        found.add(str(record[table.PARTITION_KEY]))
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
                if not unprocessed:
                    break
                keys = list(unprocessed["Keys"])
        return found

    def park(self, order_id: str, fault: str, reason: str, now: datetime) -> None:
        """Write the order's dead-letter record (a permanent fault), listed in the index."""
        parked_at = format_time(now)
        self._client.put_item(
            TableName=self._table,
            Item=_serialize(
                {
                    table.PARTITION_KEY: order_id,
                    table.SORT_KEY: table.DEAD_LETTER_RECORD,
                    table.FAULT: fault,
                    table.REASON: reason[:1000],
                    table.PARKED_AT: parked_at,
                    table.PENDING_SHARD: table.DEAD_LETTER_SHARD,
                    table.DEADLINE: parked_at,
                }
            ),
        )

    def dead_letters(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The app's dead-letter records, oldest first (a Query on the index, then each
        record read by key)."""
        keys: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": table.PENDING_INDEX,
            "KeyConditionExpression": "#shard = :shard",
            "ExpressionAttributeNames": {"#shard": table.PENDING_SHARD},
            "ExpressionAttributeValues": _serialize({":shard": table.DEAD_LETTER_SHARD}),
        }
        while len(keys) < limit:
            page = self._client.query(**kwargs)
            keys.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = []
        for key in keys[:limit]:
            item = self._client.get_item(
                TableName=self._table,
                Key={k: key[k] for k in (table.PARTITION_KEY, table.SORT_KEY)},
                ConsistentRead=True,
            ).get("Item")
            if item:
                records.append(to_python(item))
        return records

    def unlist(self, order_id: str) -> None:
        """Take the order out of the pending index (its record is left as it is)."""
        self._update_record(
            order_id,
            "REMOVE #deadline, #shard",
            "attribute_exists(#pk)",
            {
                "#deadline": table.DEADLINE,
                "#shard": table.PENDING_SHARD,
                "#pk": table.PARTITION_KEY,
            },
        )

    def _update_record(
        self,
        order_id: str,
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any] | None = None,
    ) -> bool:
        """A conditional update of the order record; False if the condition failed."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(order_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = _serialize(values)
        try:
            self._client.update_item(**kwargs)
        except ClientError as err:
            if not _is_conditional_failure(err):
                raise
            return False
        return True

    def unpark(self, order_id: str) -> None:
        """Remove the order's dead-letter record (after it was published again)."""
        self._client.delete_item(
            TableName=self._table,
            Key=_serialize(
                {table.PARTITION_KEY: order_id, table.SORT_KEY: table.DEAD_LETTER_RECORD}
            ),
        )


@dataclass(frozen=True)
class NotifyClaim:
    """An invoice's notification claim: held until ``lease_until``."""

    lease_until: datetime


@dataclass(frozen=True)
class DeadlineBucket:
    """One deadline bucket: the orders of one batch (or one sweep page) with their
    deadlines, listed under ``shard``; ``sort_key`` starts with the earliest deadline."""

    shard: str
    sort_key: str
    deadlines: Mapping[str, datetime]


def bucket_sort_key(earliest: datetime, bucket_id: str) -> str:
    return f"{format_time(earliest)}#{bucket_id}"


def bucket_from_item(item: Mapping[str, Any]) -> DeadlineBucket:
    """Parse a deadline bucket; an entry whose time cannot be read is due at once (the
    sweep re-reads the order and decides from the order itself)."""
    partition = str(item[table.PARTITION_KEY])
    shard = partition[len(table.DEADLINE_BUCKETS) + 1 :]
    sort_key = str(item[table.SORT_KEY])
    earliest = sort_key.split("#", 1)[0]
    deadlines: dict[str, datetime] = {}
    listed = item.get(table.BUCKET_ORDERS)
    for order_id, value in (listed if isinstance(listed, Mapping) else {}).items():
        try:
            deadlines[str(order_id)] = parse_time(str(value))
        except ValueError:
            deadlines[str(order_id)] = parse_time(earliest)
    return DeadlineBucket(shard, sort_key, deadlines)


def is_settled(record: Mapping[str, Any] | None) -> bool:
    """An order record that says the order needs nothing more: an outcome, and for an
    invoice, the customer told. Outcome and ``NotifiedAt`` are written once and never
    removed, so even an eventually consistent read of this is safe to act on."""
    if record is None:
        return False
    kind = record.get(table.OUTCOME)
    return kind in OUTCOME_KINDS and (kind != INVOICED or table.NOTIFIED_AT in record)


def _key(order_id: str) -> dict[str, Any]:
    return _serialize({table.PARTITION_KEY: order_id, table.SORT_KEY: table.ORDER_RECORD})


def _serialize(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items()}
