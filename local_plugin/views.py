"""This app's panels in the local runtime's web UI: the orders board and each order's
timeline, built from ``python -m ops``'s own code (:class:`ops.commands.Operator`,
:func:`ops.story.order_story`), so the board tells the same story as ``ops inspect``.

* ``views()``: one ``board`` view, ``orders``: a column per status (pending, approved,
  invoiced, rejected, timed out, parked), a card per order with its checks; its detail
  is the order's ``inspect`` story as a ``timeline``.
* ``parked()``: the app's ``#dead-letter`` records (``ops dead-letters``).
* ``redrive(source, id)``: ``ops redrive --source dead-letters --order ID``.

The board is one Scan of the local table (a developer's board over a local table,
never the app's path, which reads by key only), each order's items told by
:func:`ops.story.order_story`; a card's timeline is read as ``ops inspect`` reads it.
"""

from __future__ import annotations

import functools
from typing import Any

from chalicelib import table
from chalicelib.domain import format_time
from chalicelib.store import to_python
from local.plugins import PluginContext, View
from ops.commands import DEAD_LETTERS, Operator
from ops.connect import resolve
from ops.errors import OK
from ops.story import dead_letter_view, order_story, render_story, waiting_line

COLUMNS = (
    ("pending", "Pending"),
    ("approved", "Approved"),
    ("invoiced", "Invoiced"),
    ("rejected", "Rejected"),
    ("timed-out", "Timed out"),
    ("parked", "Parked"),
)
# Orders shown on the board: the most recently active ones.
BOARD_LIMIT = 200


class OrdersViews:
    """The plug-in object: ``views``, ``parked`` and ``redrive`` hooks."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    @functools.cached_property
    def operator(self) -> Operator:
        target = resolve(
            "local",
            self.context.endpoint_url,
            self.context.region,
            None,
            dict(self.context.environment),
        )
        return Operator(target)

    def views(self) -> list[View]:
        return [View("orders", "Orders", "board", self.board, self.timeline)]

    # the board -----------------------------------------------------------------------

    def _orders(self) -> dict[str, list[dict[str, Any]]]:
        """Every order's items, from one Scan (paged), as ``order_items`` gives them."""
        client = self.operator.target.client("dynamodb")
        orders: dict[str, list[dict[str, Any]]] = {}
        kwargs: dict[str, Any] = {"TableName": self.operator.settings.table_name}
        while True:
            page = client.scan(**kwargs)
            for item in page.get("Items", []):
                plain = to_python(item)
                orders.setdefault(str(plain.get(table.PARTITION_KEY, "")), []).append(plain)
            if "LastEvaluatedKey" not in page:
                return orders
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def board(self) -> dict[str, Any]:
        operator = self.operator
        now = operator.now()
        stamp = format_time(now)
        cards = [
            card(
                order_story(
                    order_id, items, operator.settings.required_checks, now, operator.order_timeout
                ),
                stamp,
            )
            for order_id, items in self._orders().items()
            if order_id and not order_id.startswith("#")
        ]
        cards.sort(key=lambda c: (str(c["at"]), str(c["key"])), reverse=True)
        return {
            "columns": [{"key": key, "title": title} for key, title in COLUMNS],
            "cards": cards[:BOARD_LIMIT],
        }

    def timeline(self, order_id: str) -> dict[str, Any] | None:
        story = self.operator.story(order_id)
        if story is None:
            return None
        return {
            "title": f"order {order_id}",
            "state": story["status"],
            "entries": [
                {
                    "at": entry["at"],
                    "event": entry["event"],
                    "summary": entry["summary"],
                    "state": entry.get("status") or entry.get("kind") or entry["event"],
                }
                for entry in story["timeline"]
            ],
            "footer": f"waiting for: {waiting_line(story['waitingFor'])}",
            "text": render_story(story),
        }

    # parked records ------------------------------------------------------------------

    def parked(self) -> list[dict[str, Any]]:
        return [
            {
                "source": DEAD_LETTERS,
                "id": view["orderId"],
                "label": f"order {view['orderId']}",
                "reason": f"{view['fault']}: {view['reason']}",
                "at": view["parkedAt"],
            }
            for view in (dead_letter_view(r) for r in self.operator.store.dead_letters())
        ]

    def redrive(self, source: str, key: str) -> dict[str, Any]:
        if source != DEAD_LETTERS:
            return {"ok": False, "detail": f"unknown source {source!r}; expected {DEAD_LETTERS}"}
        report = self.operator.redrive(DEAD_LETTERS, [key], False, [])
        return {"ok": report.code == OK, "detail": "\n".join(report.lines), "data": report.data}


def card(story: dict[str, Any], now: str) -> dict[str, Any]:
    """One order on the board: its column, its checks, its latest moment."""
    results = {e["check"]: e["status"] for e in story["timeline"] if e["event"] == "check-result"}
    checks = list(dict.fromkeys([*story["requiredChecks"], *results]))
    column = "parked" if story["deadLetter"] or story["status"] == "unknown" else story["status"]
    # The latest thing that happened: a deadline or a lease ahead has not happened yet.
    latest = max((str(e["at"]) for e in story["timeline"] if str(e["at"]) <= now), default="")
    return {
        "key": story["orderId"],
        "title": story["orderId"],
        "column": column,
        "state": story["status"],
        "at": latest,
        "badges": [{"label": name, "state": results.get(name, "missing")} for name in checks],
        "note": waiting_line(story["waitingFor"]),
    }
