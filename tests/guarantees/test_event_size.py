"""Issue 9, case 3: an event too big for PutEvents never stalls the shard.

Rules driven: PutEvents refuses a request whose entries total 256 KB or more, by AWS's
entry-size rule, with ``ValidationException`` for the whole call (eb-putevent-size,
API_PutEvents); the stream mapping retries and then discards the batch
(services-dynamodb-errors). A direct writer may store a ``Reason`` up to the 400 KB item
limit.

``PUBLISH_ATTEMPTS=1``: the app's own PutEvents retries only add waiting here (a
ValidationException is not temporary); the guarantee holds for any setting.
"""

from __future__ import annotations

import pytest

from tests.awsrules.eventbridge import MAX_REQUEST_BYTES
from tests.guarantees.conftest import Stack
from tests.guarantees.observe import summary_line, tally

BIG = "big-reason"
HEALTHY = [f"small-{n:02d}" for n in range(10)]
REASON = "the pallet was recounted; " * 12_000  # ~300 KB
FREE_TEXT_BOUND = 500  # CONTRACT: reasons cut to 500 characters in the event


@pytest.fixture
def app_env() -> dict[str, str]:
    return {"PUBLISH_ATTEMPTS": "1"}


def test_an_event_too_large_for_put_events_never_stalls_the_orders_sharing_its_batch(
    stack: Stack,
) -> None:
    """One order carries a ~300 KB reason; 10 healthy orders share its stream batch and
    its PutEvents call."""
    for order in HEALTHY[:5]:
        stack.direct_write(order, "Account Check", "passed")
        stack.direct_write(order, "In Stock", "passed")
    stack.direct_write(BIG, "Account Check", "passed")
    stack.direct_write(BIG, "In Stock", "failed", reason=REASON)
    for order in HEALTHY[5:]:
        stack.direct_write(order, "Account Check", "passed")
        stack.direct_write(order, "In Stock", "passed")
    report = stack.run_stream(ParallelizationFactor=1)
    stack.deliver()

    refused = [c for c in stack.bus.calls if c.refused]
    statuses = stack.statuses([*HEALTHY, BIG])
    result = tally(
        "3-event-too-large",
        [*HEALTHY, BIG],
        statuses,
        stack.sent.sent,
        stack.replies(),
        dead_lettered=stack.dead_letters(),
        discarded_records=report.discarded_records,
        refused_put_events=len(refused),
        largest_request=stack.bus.largest_request,
    )
    summary_line(result)
    assert not result.lost, f"orders never decided: {result.counts()}; lost {result.lost}"
    assert stack.bus.largest_request < MAX_REQUEST_BYTES, (
        f"a PutEvents request of {stack.bus.largest_request} bytes was sent: {result.counts()}"
    )
    assert report.discarded_records == 0, f"the shard stalled: {result.counts()}"


def test_a_published_big_event_is_truncated_with_a_marker_and_get_keeps_the_full_text(
    stack: Stack,
) -> None:
    """The aggregated event cuts free text to the documented bound and says so
    (``truncated``); the table and GET keep the full reason."""
    stack.direct_write(BIG, "Account Check", "passed")
    stack.direct_write(BIG, "In Stock", "failed", reason=REASON)
    stack.run_stream(ParallelizationFactor=1)
    published = [e for e in stack.bus.events if e["detail"].get("OrderID") == BIG]
    parked = stack.dead_letters().get(BIG, {})
    assert published or parked.get("Fault") == "event-too-large", (
        f"neither published nor dead-lettered; PutEvents calls: {stack.bus.calls}"
    )
    for event in published:
        assert "In Stock" in event["detail"].get("truncated", []), event["detail"].keys()
        assert len(event["detail"]["reasons"]["In Stock"]) <= FREE_TEXT_BOUND
    response = stack.get(BIG)
    assert response.status_code == 200
    assert response.json_body["events"]["In Stock"]["reason"] == REASON
