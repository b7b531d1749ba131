"""What a user observes, counted per scenario: orders lost, doubled, told twice, told never.

* **lost**: an order that should have been decided (invoiced, rejected or timed out) is
  still undecided (``pending``/``approved``) or unreadable, and was not dead-lettered;
* **doubled**: the targets' replies for one order named more than one outcome (two
  different invoices, or an invoice and a problem);
* **told twice**: more than one ``Order sent`` log line for the order;
* **told never**: an invoiced order without any ``Order sent`` line.

:func:`summary_line` prints one line per scenario (``pytest -s`` shows it) so the counts
can be reported; the tests put the same counts in their assertion messages.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DECIDED = ("invoiced", "rejected", "timed-out")
ORDER_SENT = "Order sent"
SERVICE_LOGGER = "event-aggregator"


class OrderSentLog(logging.Handler):
    """Counts the default notifier's ``Order sent`` lines per ``order_id``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter[str] = Counter()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == ORDER_SENT:
            with self._guard:
                self.sent[str(getattr(record, "order_id", "?"))] += 1


@contextmanager
def order_sent_log() -> Iterator[OrderSentLog]:
    handler = OrderSentLog()
    target = logging.getLogger(SERVICE_LOGGER)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)


class NotifierDown(RuntimeError):
    """The notification service failed (injected)."""


class FailingNotifications(logging.Filter):
    """Makes the default notifier fail: the ``Order sent`` line raises before it is
    written (a filter runs before any handler and its exception reaches the caller), so
    the customer is not told and the target invocation fails."""

    def __init__(self, order_id: str, times: int) -> None:
        super().__init__()
        self.order_id = order_id
        self.remaining = times
        self.injected = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.getMessage() == ORDER_SENT
            and str(getattr(record, "order_id", "")) == self.order_id
            and self.remaining > 0
        ):
            self.remaining -= 1
            self.injected += 1
            raise NotifierDown(f"notifier down for order {self.order_id}")
        return True


@contextmanager
def failing_notifications(order_id: str, times: int) -> Iterator[FailingNotifications]:
    failing = FailingNotifications(order_id, times)
    target = logging.getLogger(SERVICE_LOGGER)
    target.addFilter(failing)
    try:
        yield failing
    finally:
        target.removeFilter(failing)


@dataclass
class Tally:
    """The four counts of one scenario."""

    scenario: str
    orders: int
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    told_twice: list[str] = field(default_factory=list)
    told_never: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> str:
        parts = [
            f"orders={self.orders}",
            f"lost={len(self.lost)}",
            f"doubled={len(self.doubled)}",
            f"told_twice={len(self.told_twice)}",
            f"told_never={len(self.told_never)}",
        ]
        parts += [f"{key}={value}" for key, value in self.extra.items()]
        return " ".join(parts)

    def __str__(self) -> str:
        return f"[{self.scenario}] {self.counts()}"


def outcome_names(reply: Any) -> set[str]:
    """The outcome a target's reply names (``{"outcome": ..., "invoice": ...}``)."""
    if not isinstance(reply, Mapping) or not reply.get("outcome"):
        return set()
    invoice = reply.get("invoice")
    name = str(reply["outcome"])
    if isinstance(invoice, Mapping):
        name += ":" + json.dumps(invoice, sort_keys=True)
    return {name}


def tally(
    scenario: str,
    expected: Iterable[str],
    statuses: Mapping[str, str],
    sent: Mapping[str, int],
    replies: Iterable[tuple[str, Any]] = (),
    dead_lettered: Iterable[str] = (),
    **extra: Any,
) -> Tally:
    """Count what users saw. ``statuses``: each order's ``GET`` status (``"error"`` if
    ``GET`` failed); ``sent``: ``Order sent`` lines per order; ``replies``: every target
    reply, with the order its event was about; ``dead_lettered``: orders parked in the app's dead letters."""
    expected = list(expected)
    parked = set(dead_lettered)
    outcomes: dict[str, set[str]] = {}
    for order, reply in replies:
        outcomes.setdefault(order, set()).update(outcome_names(reply))
    result = Tally(scenario, len(expected), extra=dict(extra))
    for order in expected:
        status = statuses.get(order, "missing")
        if status not in DECIDED and order not in parked:
            result.lost.append(order)
        if len(outcomes.get(order, set())) > 1:
            result.doubled.append(order)
        if sent.get(order, 0) > 1:
            result.told_twice.append(order)
        if status == "invoiced" and sent.get(order, 0) == 0:
            result.told_never.append(order)
    return result


# The local runtime's hop line for a target's reply: ``[order 7] handler done: {...}``.
_REPLY_LINE = re.compile(r"\[order (\S+)\] handler done: (\{.*\})$")


def sent_from_lines(lines: Iterable[str]) -> Counter[str]:
    """``Order sent`` per ``order_id`` from printed JSON log lines (the local runtime's
    ``--verbose`` output: each worker prints the app's structured logs)."""
    told: Counter[str] = Counter()
    for line in lines:
        if ORDER_SENT not in line or "{" not in line:
            continue
        try:
            record = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == ORDER_SENT:
            told[str(record.get("order_id"))] += 1
    return told


def replies_from_lines(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """Every target's reply, with the order its event was about, from the local
    runtime's hop lines."""
    found: list[tuple[str, Any]] = []
    for line in lines:
        match = _REPLY_LINE.search(line)
        if match:
            try:
                found.append((match.group(1), ast.literal_eval(match.group(2))))
            except (ValueError, SyntaxError):
                continue
    return found


def summary_line(result: Tally) -> str:
    """Print the scenario's one-line summary (visible with ``pytest -s``) and return it."""
    line = f"GUARANTEE {result}"
    print(line)
    return line
