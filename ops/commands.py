"""The commands of ``python -m ops``: each returns a :class:`Report` (JSON data, the
lines a person reads, an exit code). AWS is reached through chalicelib's own
:class:`EventStore`, :class:`Aggregator`, :class:`Publisher` and :class:`StreamRecovery`,
so the command line reads and writes exactly as the deployed code does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import clock, table
from chalicelib.aggregator import Aggregator
from chalicelib.domain import TIMED_OUT, decision, format_time
from chalicelib.events import aggregated_detail, put_events_entry
from chalicelib.publisher import Publisher
from chalicelib.recovery import StreamRecovery
from chalicelib.store import EventStore, is_settled, order_from_items, shard_name
from ops import queues, render
from ops.connect import Target
from ops.errors import INCOMPLETE, NOT_FOUND, OK, OpsError
from ops.story import dead_letter_view, order_story

DEAD_LETTERS = "dead-letters"
STREAM_RANGE_PREFIX = "#stream-range/"
# The latest time the index can hold: a Query up to it lists every entry of a shard.
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
READ_CONCURRENCY = 8
# What a redrive did to one order: these leave nothing to push through (a parked entry
# naming only such orders is removed); those need another run or a repair (exit 4).
DONE_ACTIONS = frozenset(
    {"published", "would-publish", "already-decided", "not-found", "nothing-reported"}
)
FAILED_ACTIONS = frozenset({"failed", "refused", "unreadable"})
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Report:
    data: dict[str, Any]
    lines: list[str]
    code: int = OK


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``; raise ``ValueError`` otherwise."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 2h, 1d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


@dataclass
class _Parked:
    """One parked entry: a dead-letter record or an SQS message."""

    source: str
    label: str
    order_ids: list[str]
    queue: queues.Queue | None = None
    message: dict[str, Any] | None = None
    note: str | None = None
    outcome: list[str] = field(default_factory=list)


class Operator:
    """The commands, against one :class:`Target`."""

    def __init__(self, target: Target, now: Callable[[], datetime] = clock.now) -> None:
        self.target = target
        self.settings = target.settings
        self.now = now
        self.store = EventStore(
            target.client("dynamodb"),
            self.settings.table_name,
            self.settings.order_timeout_seconds,
        )
        self.order_timeout = timedelta(seconds=self.settings.order_timeout_seconds)

    @functools.cached_property
    def sqs(self) -> Any:
        return self.target.client("sqs")

    @functools.cached_property
    def publisher(self) -> Publisher:
        return Publisher(
            self.target.client("events"),
            self.settings.publish_attempts,
            self.settings.publish_backoff_seconds,
        )

    @functools.cached_property
    def aggregator(self) -> Aggregator:
        return Aggregator(self.store, self.publisher, self.settings, now=self.now)

    @functools.cached_property
    def recovery(self) -> StreamRecovery:
        return StreamRecovery(
            self.target.client("dynamodbstreams"), self.aggregator, self.store, now=self.now
        )

    # inspect -------------------------------------------------------------------------

    def story(self, order_id: str) -> dict[str, Any] | None:
        items = self.store.order_items(order_id)
        if not items:
            return None
        return order_story(
            order_id, items, self.settings.required_checks, self.now(), self.order_timeout
        )

    def inspect(self, order_id: str) -> Report:
        story = self.story(order_id)
        if story is None:
            raise OpsError(self._unknown(order_id), NOT_FOUND)
        return Report(story, render.story_lines(story))

    def _unknown(self, order_id: str) -> str:
        return (
            f"no items stored for order {order_id!r} in table "
            f"{self.settings.table_name} {self.target.where}"
        )

    # pending -------------------------------------------------------------------------

    def pending(self, due: bool, older_than: timedelta | None, limit: int) -> Report:
        now = self.now()
        cutoff = END_OF_TIME
        if due:
            cutoff = now
        if older_than is not None:
            # Deadline = first result + the stage's timeout; re-checked on each order below.
            cutoff = min(cutoff, now - older_than + self.order_timeout)
        shards = [shard_name(n) for n in range(self.settings.pending_shards)]
        listed: dict[str, None] = {}
        truncated = False
        for shard in shards:
            ids, more = self._listed_ids(shard, cutoff, limit)
            listed.update(dict.fromkeys(ids))
            ids, more_indexed = self._shard_ids(shard, cutoff, limit)
            listed.update(dict.fromkeys(ids))
            truncated = truncated or more or more_indexed
        done = self.store.settled(listed)
        order_ids = [o for o in listed if o not in done]
        with ThreadPoolExecutor(READ_CONCURRENCY) as pool:
            loaded = list(pool.map(self.store.order_items, order_ids))
        entries = []
        for order_id, items in zip(order_ids, loaded, strict=True):
            if not items:
                continue  # gone since the index was read (it is eventually consistent)
            if _finished(items):
                continue
            entry = render.pending_entry(
                order_story(
                    order_id, items, self.settings.required_checks, now, self.order_timeout
                ),
                items,
            )
            if older_than is not None and not _older(entry, now - older_than):
                continue
            entries.append(entry)
        entries.sort(key=lambda e: (e["deadline"] or "", e["orderId"]))
        truncated = truncated or len(entries) > limit
        data = {
            "command": "pending",
            "now": format_time(now),
            "due": due,
            "olderThanSeconds": int(older_than.total_seconds()) if older_than else None,
            "shards": shards,
            "orders": entries[:limit],
            "truncated": truncated,
        }
        return Report(data, render.pending_lines(data))

    def _listed_ids(self, shard: str, cutoff: datetime, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` ids the deadline buckets of one shard list with a deadline up
        to ``cutoff`` (a Query on the bucket partition, never a Scan), and whether more
        are left. Buckets also list orders done since, which the caller drops."""
        ids: dict[str, None] = {}
        start: dict[str, Any] | None = None
        while len(ids) < limit:
            buckets, start = self.store.due_buckets(shard, cutoff, start)
            for bucket in buckets:
                ids.update(dict.fromkeys(o for o, due in bucket.deadlines.items() if due <= cutoff))
            if start is None:
                return list(ids), False
        return list(ids), True

    def _shard_ids(self, shard: str, cutoff: datetime, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` ids of one shard with a deadline up to ``cutoff``, oldest first
        (a Query on the index partition, never a Scan), and whether more are left: orders
        opened before the deadline buckets (older tables)."""
        ids: list[str] = []
        start: dict[str, Any] | None = None
        while len(ids) < limit:
            page, start = self.store.due_orders(shard, cutoff, start, min(500, limit - len(ids)))
            ids += page
            if start is None:
                return ids, False
        return ids, True

    # dead-letters --------------------------------------------------------------------

    def dead_letters(self, extra_queues: Sequence[str]) -> Report:
        records = [_record_view(r) for r in self.store.dead_letters()]
        found = queues.find_queues(self.sqs, self.target.failure_queues(list(extra_queues)))
        listed = []
        for queue in found:
            messages = queues.peek(self.sqs, queue.url) if queue.url else []
            listed.append(render.queue_view(queue, [(m, self._resolve(m)) for m in messages]))
        order_ids = {r["orderId"] for r in records if r["kind"] == "order"}
        for queue_view in listed:
            for message in queue_view["messages"]:
                order_ids.update(message["orderIds"])
        data = {
            "command": "dead-letters",
            "records": records,
            "queues": listed,
            "orderIds": sorted(order_ids),
        }
        return Report(data, render.dead_letter_lines(data))

    def _resolve(self, message: dict[str, Any]) -> queues.Resolution:
        return queues.resolve(str(message.get("Body", "")), self.recovery.orders_in)

    # redrive -------------------------------------------------------------------------

    def redrive(
        self, source: str | None, named: Sequence[str], dry_run: bool, extra_queues: Sequence[str]
    ) -> Report:
        parked, notes = self._parked(source, dry_run, extra_queues)
        try:
            return self._redrive(parked, list(dict.fromkeys(named)), dry_run, notes)
        finally:
            if not dry_run:
                self._release(parked)

    def _parked(
        self, source: str | None, dry_run: bool, extra: Sequence[str]
    ) -> tuple[list[_Parked], list[str]]:
        """Every parked entry of ``source`` (all when ``None``), and notes on queues."""
        parked: list[_Parked] = []
        found: list[queues.Queue] = []
        if source != DEAD_LETTERS:
            found = queues.find_queues(self.sqs, self.target.failure_queues(list(extra)))
            known = [DEAD_LETTERS] + [q.source for q in found] + [q.name for q in found]
            if source is not None and source not in known:
                raise OpsError(
                    f"unknown --source {source!r}; expected one of "
                    + ", ".join(dict.fromkeys(known))
                )
            found = [q for q in found if source in (None, q.source, q.name)]
        if source in (None, DEAD_LETTERS):
            parked += self._parked_records()
        notes = [f"queue {q.name} ({q.source}): {q.note}" for q in found if q.url is None]
        for queue in found:
            if queue.url is not None:
                parked += self._parked_messages(queue, dry_run)
        return parked, notes

    def _parked_records(self) -> list[_Parked]:
        parked = []
        for record in self.store.dead_letters():
            view = _record_view(record)
            if view["kind"] == "order":
                parked.append(_Parked(DEAD_LETTERS, view["orderId"], [view["orderId"]]))
            else:
                note = "a lost stream range names no order; remove it once investigated"
                parked.append(_Parked(DEAD_LETTERS, view["orderId"], [], note=note))
        return parked

    def _parked_messages(self, queue: queues.Queue, dry_run: bool) -> list[_Parked]:
        assert queue.url is not None
        receive = queues.peek if dry_run else queues.take
        parked = []
        for message in receive(self.sqs, queue.url):
            resolution = self._resolve(message)
            order_ids = resolution.order_ids if resolution.resolved else []
            note = resolution.note or ("resolves to no order" if not order_ids else None)
            parked.append(
                _Parked(queue.name, str(message["MessageId"]), order_ids, queue, message, note)
            )
        return parked

    def _redrive(
        self, parked: list[_Parked], named: list[str], dry_run: bool, notes: list[str]
    ) -> Report:
        if named:
            wanted = set(named)
            order_ids = named
            parked = [p for p in parked if wanted & set(p.order_ids)]
        else:
            order_ids = list(dict.fromkeys(o for p in parked for o in p.order_ids))
        skipped = [p for p in parked if not p.order_ids]
        handled = [p for p in parked if p.order_ids]
        results = {order_id: self._redrive_order(order_id, dry_run) for order_id in order_ids}
        for entry in handled:
            self._settle(entry, results, dry_run)
        data = {
            "command": "redrive",
            "dryRun": dry_run,
            "named": named,
            "orders": list(results.values()),
            "entries": [
                {
                    "source": p.source,
                    "id": p.label,
                    "orderIds": p.order_ids,
                    "result": "; ".join(p.outcome),
                }
                for p in handled
            ],
            "skipped": [{"source": p.source, "id": p.label, "note": p.note or ""} for p in skipped],
            "queueNotes": notes,
        }
        actions = {r["action"] for r in results.values()}
        code = OK
        if actions & FAILED_ACTIONS:
            code = INCOMPLETE
        elif not results or actions == {"not-found"}:
            code = NOT_FOUND
        return Report(data, render.redrive_lines(data), code)

    def _redrive_order(self, order_id: str, dry_run: bool) -> dict[str, Any]:
        required = self.settings.required_checks
        items = self.store.order_items(order_id)
        if not items:
            return _result(order_id, "not-found", None, "nothing stored for this order")
        order = order_from_items(order_id, items, self.order_timeout)
        if order.record_corrupt:
            detail = "the order record cannot be read: " + "; ".join(order.problems)
            return _result(order_id, "unreadable", None, detail + " (left parked; repair it)")
        if order.outcome is not None:
            return _result(order_id, "already-decided", order.outcome.kind, "nothing to publish")
        if not order.results:
            return _result(order_id, "nothing-reported", None, "no source result stored")
        status = decision(order, required)
        if dry_run:
            return _result(order_id, "would-publish", status, "would re-aggregate and publish")
        parked_before = _dead_letter(items)
        failed = self.aggregator.aggregate([order_id])
        if order_id in failed:
            return _result(order_id, "failed", status, "AWS failed transiently; retry later")
        parked_after = _dead_letter(self.store.order_items(order_id))
        # Parked again (a new record) means AWS refused the event again; the old record
        # still there means only its removal failed, which settling the entry retries.
        if parked_after is not None and (
            parked_before is None
            or parked_after.get(table.PARKED_AT) != parked_before.get(table.PARKED_AT)
        ):
            reason = f"parked again ({parked_after.get(table.FAULT)}): {parked_after.get(table.REASON, '')}"
            return _result(order_id, "refused", status, reason)
        return _result(order_id, "published", status, "re-aggregated and published")

    def _settle(self, entry: _Parked, results: dict[str, dict[str, Any]], dry_run: bool) -> None:
        """Remove a parked entry whose orders are all through; otherwise keep it."""
        pending = [
            o for o in entry.order_ids if results.get(o, {}).get("action") not in DONE_ACTIONS
        ]
        if pending:
            entry.outcome.append(f"kept: {', '.join(pending)} not through yet")
            return
        verb = "would remove" if dry_run else "removed"
        if entry.message is None:
            if not dry_run:
                self.store.unpark(entry.label)
            entry.outcome.append(f"{verb} the dead-letter record")
        else:
            assert entry.queue is not None and entry.queue.url is not None
            if not dry_run:
                queues.delete(self.sqs, entry.queue.url, entry.message)
                entry.message = None
            entry.outcome.append(f"{verb} the message from {entry.queue.name}")

    def _release(self, parked: Iterable[_Parked]) -> None:
        for entry in parked:
            if entry.message is not None and entry.queue is not None and entry.queue.url:
                queues.release(self.sqs, entry.queue.url, entry.message)

    # replay --------------------------------------------------------------------------

    def replay(self, order_ids: Sequence[str], dry_run: bool) -> Report:
        results = [self._replay_order(o, dry_run) for o in dict.fromkeys(order_ids)]
        actions = {r["action"] for r in results}
        code = OK
        if actions & FAILED_ACTIONS:
            code = INCOMPLETE
        elif "not-found" in actions:
            code = NOT_FOUND
        data = {"command": "replay", "dryRun": dry_run, "orders": results}
        return Report(data, render.replay_lines(data), code)

    def _replay_order(self, order_id: str, dry_run: bool) -> dict[str, Any]:
        required = self.settings.required_checks
        items = self.store.order_items(order_id)
        if not items:
            return {**_result(order_id, "not-found", None, self._unknown(order_id)), "event": None}
        order = order_from_items(order_id, items, self.order_timeout)
        if order.record_corrupt:
            why = "the order record cannot be read: " + "; ".join(order.problems)
            return {**_result(order_id, "unreadable", None, why), "event": None}
        timed_out = order.outcome is not None and order.outcome.kind == TIMED_OUT
        detail = aggregated_detail(order, required, status=TIMED_OUT if timed_out else None)
        if dry_run:
            return {
                **_result(order_id, "would-publish", detail["status"], "would publish this event"),
                "event": detail,
            }
        result = self.publisher.publish([put_events_entry(self.settings, detail)])
        if result.rejected:
            return {
                **_result(order_id, "refused", detail["status"], result.rejected[0]),
                "event": detail,
            }
        if result.failed:
            return {
                **_result(order_id, "failed", detail["status"], "PutEvents failed; retry later"),
                "event": detail,
            }
        return {**_result(order_id, "published", detail["status"], "published"), "event": detail}


def _result(order_id: str, action: str, status: str | None, detail: str) -> dict[str, Any]:
    return {"orderId": order_id, "action": action, "status": status, "detail": detail}


def _finished(items: Sequence[dict[str, Any]]) -> bool:
    """The order needs nothing more (read in full, so a strongly consistent answer)."""
    record = next((i for i in items if i.get(table.SORT_KEY) == table.ORDER_RECORD), None)
    return is_settled(record)


def _dead_letter(items: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return next((i for i in items if i.get(table.SORT_KEY) == table.DEAD_LETTER_RECORD), None)


def _record_view(record: dict[str, Any]) -> dict[str, Any]:
    view = dead_letter_view(record)
    view["kind"] = "stream-range" if view["orderId"].startswith(STREAM_RANGE_PREFIX) else "order"
    return view


def _older(entry: dict[str, Any], before: datetime) -> bool:
    """First result arrived (or, in an older table, first seen) before ``before``; an
    order with neither (no ``firstSeenAt``) was already selected by its deadline."""
    first = entry.get("firstSeenAt")
    return first is None or str(first) <= format_time(before)
