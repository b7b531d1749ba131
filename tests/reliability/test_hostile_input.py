"""Hostile input: HTTP requests and stream records an attacker or a stranger could produce.

Whatever arrives, the answer is a 4xx with a message that names the problem and nothing
is written, or (for well-formed results) the text is stored and shown exactly as sent.
Never a 5xx. Records on the stream that are not source events are skipped and logged.
The basic refusals are in ``tests/functional/test_orders_api.py``; these go further.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import table
from local.pipeline import AwsClients
from tests.helpers import TABLE
from tests.reliability.faults import Harness, app_log, order_items, shared_harness

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INJECTIONS = [
    "'; DROP TABLE orders; --",
    '" OR "1"="1',
    '{"$ne": null}',
    "#order",
    ":rev",
    "#rev < :rev",
    "${jndi:ldap://evil/x}",
    "{{7*7}}",
    "../../etc/passwd",
    "..\\..\\windows",
    "<script>alert(1)</script>",
    "attribute_not_exists(Revision)",
]
_order_ids = itertools.count()


def _fresh_order() -> str:
    return f"fz-{next(_order_ids)}"


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    """One app for the module: every test uses its own order ids."""
    with shared_harness() as built:
        yield built


@pytest.fixture
def aws(h: Harness) -> AwsClients:
    return h.aws


def _item_count(aws: AwsClients) -> int:
    count: int = aws.dynamodb.describe_table(TableName=TABLE)["Table"]["ItemCount"]
    return count


@contextmanager
def nothing_written(aws: AwsClients, order_id: str) -> Iterator[None]:
    """No item added anywhere, and the order's own items (if any) untouched."""
    count, own = _item_count(aws), order_items(aws, order_id)
    yield
    assert (_item_count(aws), order_items(aws, order_id)) == (count, own)


def _post_raw(h: Harness, order_id: str, body: bytes | str) -> Any:
    return h.client.http.post(
        f"/orders/{order_id}/events", headers={"Content-Type": "application/json"}, body=body
    )


def _body(**fields: Any) -> bytes:
    return json.dumps(
        {"name": "In Stock", "status": "failed", **fields}, ensure_ascii=False
    ).encode()


def _refused(response: Any, field: str | None = None) -> dict[str, Any]:
    """A 4xx JSON answer with an error message (naming ``field`` if given)."""
    assert 400 <= response.status_code < 500, response.body
    body: dict[str, Any] = response.json_body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert response.headers["Content-Type"] == "application/json"
    if field is not None:
        assert body.get("field") == field, body
    return body


def _refuse_post(h: Harness, body: bytes, field: str | None = None, order_id: str = "") -> str:
    """POST ``body``; it must be refused and leave the table as it was. Returns the error."""
    order_id = order_id or _fresh_order()
    with nothing_written(h.aws, unquote(order_id)):
        answer = _refused(_post_raw(h, order_id, body), field)
    return str(answer["error"])


# --- foreign and malformed stream records --------------------------------------------
# (first in the module: the shared stream is short here, so these run fast)


def _foreign(order_id: str, **attributes: dict[str, Any]) -> dict[str, Any]:
    return {"OrderID": {"S": order_id}, "EventName": {"S": "In Stock"}, **attributes}


FOREIGN_ATTRIBUTES: dict[str, dict[str, dict[str, Any]]] = {
    "no status": {"Colour": {"S": "red"}},
    "status not a check status": {"Status": {"S": "shipped"}},
    "status as a number": {"Status": {"N": "1"}},
    "status as a list": {"Status": {"L": [{"S": "passed"}]}},
    "status as a map": {"Status": {"M": {"S": {"S": "passed"}}}},
}


def test_foreign_items_on_the_stream_are_skipped_and_logged(h: Harness) -> None:
    foreign = {_fresh_order(): attributes for attributes in FOREIGN_ATTRIBUTES.values()}
    for order_id, attributes in foreign.items():
        h.aws.dynamodb.put_item(TableName=TABLE, Item=_foreign(order_id, **attributes))
    hashed = _fresh_order()  # another writer's "#…" item, with a valid-looking status
    item = {**_foreign(hashed, Status={"S": "passed"}), "EventName": {"S": "#audit"}}
    h.aws.dynamodb.put_item(TableName=TABLE, Item=item)
    ok = _fresh_order()
    h.post(ok, "Account Check", "passed")
    h.post(ok, "In Stock", "passed")
    failures = len(h.pipeline.failures.entries)
    with app_log() as log:
        h.run()
    skipped = {getattr(r, "order_id", None) for r in log if "skipped a record" in r.getMessage()}
    for order_id in [*foreign, hashed]:
        assert order_id in skipped
        assert h.delivered(order_id) == []
        assert table.ORDER_RECORD not in order_items(h.aws, order_id)
    assert len(h.pipeline.failures.entries) == failures
    assert h.view(ok)["status"] == "invoiced"


def test_removed_items_on_the_stream_are_skipped(h: Harness) -> None:
    order_id = _fresh_order()
    h.post(order_id, "In Stock", "failed")
    h.run()
    on_bus = len(h.pipeline.delivered)
    failures = len(h.pipeline.failures.entries)
    key = {"OrderID": {"S": order_id}, "EventName": {"S": "In Stock"}}
    h.aws.dynamodb.delete_item(TableName=TABLE, Key=key)
    h.run()
    assert len(h.pipeline.delivered) == on_bus
    assert len(h.pipeline.failures.entries) == failures


def test_foreign_item_with_a_status_but_missing_attributes_is_skipped(h: Harness) -> None:
    order_id = _fresh_order()
    h.aws.dynamodb.put_item(TableName=TABLE, Item=_foreign(order_id, Status={"S": "passed"}))
    h.run()
    assert h.delivered(order_id) == []
    assert table.ORDER_RECORD not in order_items(h.aws, order_id)


# --- unicode that is text, not control -----------------------------------------------


UNICODE_REASONS = [
    "Nicht auf Lager – Größe 42",
    "在庫切れです",
    "نفد من المخزون",
    "אזל מהמלאי",
    "Нет в наличии",
    "sold out 🚚📦🇩🇪",
    "e\u0301 (combining)",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP",
    "para\u2029graph",
    "x" * 500,
]


def test_unicode_reasons_are_accepted_and_round_trip_to_the_problem_record(h: Harness) -> None:
    orders = {_fresh_order(): reason for reason in UNICODE_REASONS}
    for order_id, reason in orders.items():
        response = _post_raw(h, order_id, _body(reason=reason))
        assert response.status_code == 201
        assert response.json_body["stored"]["reason"] == reason
        h.post(order_id, "Account Check", "passed")
    h.run()
    for order_id, reason in orders.items():
        view = h.view(order_id)
        assert view["events"]["In Stock"]["reason"] == reason
        assert view["status"] == "rejected"
        assert view["problem"]["failed"] == [{"check": "In Stock", "reason": reason}]
        assert h.events_for(order_id)[-1]["detail"]["reasons"] == {"In Stock": reason}


# --- injection strings in every field ------------------------------------------------


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_in_the_order_id_is_refused(h: Harness, attack: str) -> None:
    path_id = quote(attack, safe="")
    _refuse_post(h, _body(), field="orderId", order_id=path_id)
    _refused(h.client.http.get(f"/orders/{path_id}"), field="orderId")


def test_injection_in_every_body_field_is_refused(h: Harness) -> None:
    for attack in INJECTIONS:
        error = _refuse_post(h, _body(name=attack), field="name")
        assert attack not in error
        _refuse_post(h, _body(status=attack), field="status")
        _refuse_post(h, _body(occurredAt=attack), field="occurredAt")


@pytest.mark.parametrize(
    "field", ["#order", ":rev", "Revision", "OrderID", "EventName", "Outcome", "$set", "__proto__"]
)
def test_injection_as_a_field_name_is_refused(h: Harness, field: str) -> None:
    _refuse_post(h, _body(**{field: "x"}), field=field)


def test_injection_in_the_reason_is_stored_as_plain_text_and_touches_nothing_else(
    h: Harness,
) -> None:
    for attack in INJECTIONS:
        order_id = _fresh_order()
        before = _item_count(h.aws)
        assert _post_raw(h, order_id, _body(reason=attack)).status_code == 201
        assert h.view(order_id)["events"]["In Stock"]["reason"] == attack
        items = order_items(h.aws, order_id)
        assert sorted(items) == ["In Stock"]  # the aggregator opens the order, not the API
        assert items["In Stock"][table.REASON] == attack
        assert _item_count(h.aws) == before + 1


# --- malformed, mistyped, oversized --------------------------------------------------


MALFORMED: dict[str, bytes] = {
    "invalid UTF-8": b'{"name": "In Stock", "status": "failed", "reason": "\xc3\x28"}',
    "truncated UTF-8": b'{"name": "In Stock", "status": "failed", "reason": "\xe2\x82"}',
    "single quotes": b"{'name': 'In Stock', 'status': 'failed'}",
    "trailing comma": b'{"name": "In Stock", "status": "failed",}',
    "comment": b'{"name": "In Stock", /* x */ "status": "failed"}',
    "two documents": b'{"name": "In Stock", "status": "failed"}{}',
    "integer of 5000 digits": b'{"name": "In Stock", "status": "failed", "reason": '
    + b"9" * 5000
    + b"}",
    "NaN reason": b'{"name": "In Stock", "status": "failed", "reason": NaN}',
    "nested objects": b'{"a":' * 2500 + b"1" + b"}" * 2500,
    "nested in a field": b'{"name": "In Stock", "status": "failed", "reason": '
    + b"[" * 6000
    + b"]" * 6000
    + b"}",
    "JSON null": b"null",
    "JSON string": b'"In Stock passed"',
    "JSON number": b"1e999",
    "whitespace only": b"   \n\t ",
    "NUL bytes": b"\x00" * 32,
    "lone surrogate in reason": b'{"name": "In Stock", "status": "failed", "reason": "\\ud800"}',
    "bidi override in reason": _body(reason="refund \u202e\u2066txt.exe"),
    "escape sequence in reason": _body(reason="\x1b[31mred\x1b[0m"),
    "zero width in reason": _body(reason="sold\u200bout"),
    "newline in reason": _body(reason="line\nbreak"),
    "status in capitals": _body(status="FAILED"),
    "status as list": _body(status=["failed"]),
    "name as object": _body(name={"S": "In Stock"}),
    "time as number": _body(occurredAt=1767268800),
    "time with control character": _body(occurredAt="2026-01-01T11:00:00Z\x00"),
    "reason as list": _body(reason=["a"]),
    "unicode lookalike name": _body(name="In Sto\u0441k"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_or_mistyped_body_is_refused_with_a_message(h: Harness, case: str) -> None:
    _refuse_post(h, MALFORMED[case])


@pytest.mark.parametrize("size", [16 * 1024 + 1, 1024 * 1024, 6 * 1024 * 1024])
def test_huge_body_is_refused_as_too_large(h: Harness, size: int) -> None:
    body = b'{"name": "In Stock", "status": "failed", "reason": "' + b"[" * size + b'"}'
    order_id = _fresh_order()
    with nothing_written(h.aws, order_id):
        response = _post_raw(h, order_id, body)
    assert response.status_code == 413
    assert "limit is 16384" in _refused(response)["error"]


def test_huge_order_id_is_refused(h: Harness) -> None:
    _refuse_post(h, _body(), field="orderId", order_id="9" * 10_000)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\u200b", "é", "🚚", "٣", "\ufeff"])
def test_control_and_unicode_characters_in_the_order_id_are_refused(h: Harness, char: str) -> None:
    _refuse_post(h, _body(), field="orderId", order_id=quote(f"a{char}b", safe=""))


@pytest.mark.parametrize("name", ["in stock", "In Stock ", " In Stock", "In  Stock", "Fraud Check"])
def test_unknown_check_names_are_refused_naming_the_allowed_ones(h: Harness, name: str) -> None:
    error = _refuse_post(h, _body(name=name), field="name")
    assert "Account Check" in error and "In Stock" in error


@FUZZ
@given(
    reason=st.text(
        alphabet=st.characters(exclude_categories=("Cc", "Cf", "Cs")), min_size=1, max_size=500
    )
)
def test_any_non_control_reason_round_trips_exactly(h: Harness, reason: str) -> None:
    order_id = _fresh_order()
    response = _post_raw(h, order_id, _body(reason=reason))
    assert response.status_code == 201, response.body
    assert h.view(order_id)["events"]["In Stock"]["reason"] == reason


# --- fuzz: never a 5xx, nothing written when refused ---------------------------------


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Years 2000-2100: the calendar's edges are known bugs, tested on their own below.
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
).map(datetime.isoformat)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["In Stock", "Account Check"]) | st.text(max_size=70) | _json,
        "status": st.sampled_from(["passed", "failed"]) | st.text(max_size=10) | _json,
        "reason": st.text(max_size=600) | _json,
        "occurredAt": _times | st.text(max_size=45) | _json,
        "extra": _json,
    },
)


def _never_5xx(h: Harness, order_id: str, body: bytes) -> None:
    count = _item_count(h.aws)
    response = _post_raw(h, order_id, body)
    assert response.status_code < 500, (body[:200], response.body)
    if response.status_code >= 400:
        _refused(response)
        assert _item_count(h.aws) == count


@FUZZ
@given(fields=_fields)
def test_fuzzed_result_objects_never_get_a_5xx(h: Harness, fields: dict[str, Any]) -> None:
    _never_5xx(h, _fresh_order(), json.dumps(fields).encode())


@FUZZ
@given(body=_json.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300))
def test_fuzzed_bodies_never_get_a_5xx(h: Harness, body: bytes) -> None:
    _never_5xx(h, _fresh_order(), body)


@FUZZ
@given(order_id=st.text(min_size=1, max_size=80))
def test_fuzzed_order_ids_never_get_a_5xx(h: Harness, order_id: str) -> None:
    path_id = quote(order_id, safe="")
    _never_5xx(h, path_id, _body())
    assert h.client.http.get(f"/orders/{path_id}").status_code < 500


# --- times at the edges of the calendar (known bugs) ---------------------------------


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_outside_the_calendar_in_utc_is_refused(h: Harness, text: str) -> None:
    _refuse_post(h, _body(occurredAt=text), field="occurredAt")


def test_result_dated_before_the_year_1000_is_refused_or_stored_readably(h: Harness) -> None:
    order_id = _fresh_order()
    first = _post_raw(h, order_id, _body(occurredAt="0999-01-01T00:00:00Z"))
    assert first.status_code < 500
    if first.status_code == 201:
        assert h.view(order_id)["events"]["In Stock"]["occurredAt"].startswith("0999-01-01")
    again = _post_raw(h, order_id, _body(occurredAt="0999-01-01T00:00:00Z"))
    newer = _post_raw(h, order_id, _body(occurredAt="2026-01-01T00:00:00Z"))
    assert again.status_code < 500 and newer.status_code == 201


def test_times_with_any_offset_are_stored_in_utc(h: Harness) -> None:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for hours in (-12, -5, 0, 5.5, 14):
        local = moment.astimezone(timezone(timedelta(hours=hours)))
        order_id = _fresh_order()
        assert _post_raw(h, order_id, _body(occurredAt=local.isoformat())).status_code == 201
        stored = h.view(order_id)["events"]["In Stock"]["occurredAt"]
        assert stored == moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
