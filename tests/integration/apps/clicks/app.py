"""Click events on a Kinesis stream; each batch a handler reads goes to a journal.

``count_clicks`` reads ``page-clicks`` (declared in the merge template, which also gives
its mapping a retry limit and an on-failure queue); a click on the page ``/broken``
always fails the batch. ``count_purchases`` reads ``purchases`` through the merge
template's ``FilterCriteria``: only records whose JSON data has ``"kind": "purchase"``.
"""

from __future__ import annotations

import base64

from chalice.app import Chalice, KinesisEvent

from chalicelib import tally  # type: ignore[attr-defined]  # this app's own (mypy sees the project's)

app = Chalice(app_name="click-counter")


@app.on_kinesis_record(
    stream="page-clicks", batch_size=10, starting_position="TRIM_HORIZON", name="count_clicks"
)
def count_clicks(event: KinesisEvent) -> None:
    raw = event.to_dict()
    tally.add("count_clicks", raw, event.context, [record.data.decode() for record in event])
    pages = [base64.b64decode(r["kinesis"]["data"]).decode() for r in raw["Records"]]
    if "/broken" in pages:
        raise ValueError("cannot count the page /broken")


@app.on_kinesis_record(
    stream="purchases", batch_size=10, starting_position="TRIM_HORIZON", name="count_purchases"
)
def count_purchases(event: KinesisEvent) -> None:
    tally.add("count_purchases", event.to_dict(), event.context, [r.data.decode() for r in event])
