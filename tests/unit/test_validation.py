"""Validation of what sources send (``chalicelib.validation``): pure Python, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import FAILED, MAX_REASON_CHARS, PASSED
from chalicelib.validation import (
    MAX_BODY_BYTES,
    MAX_FUTURE,
    ValidationError,
    parse_result_body,
    validate_order_id,
)

ALLOWED = ("Account Check", "In Stock")
NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def _body(**fields: Any) -> bytes:
    return json.dumps({"name": "In Stock", "status": PASSED, **fields}).encode()


def _refusal(raw: bytes | None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_result_body(raw, ALLOWED, NOW)
    return caught.value


# --- accepted bodies -----------------------------------------------------------------


def test_result_without_time_occurs_and_is_recorded_now() -> None:
    result, explicit = parse_result_body(_body(), ALLOWED, NOW)
    assert explicit is False
    assert result.name == "In Stock"
    assert result.status == PASSED
    assert result.occurred_at == NOW
    assert result.recorded_at == NOW
    assert result.reason is None


def test_result_with_time_keeps_it_in_utc_and_says_so() -> None:
    result, explicit = parse_result_body(
        _body(occurredAt="2026-01-31T12:30:00+01:00"), ALLOWED, NOW
    )
    assert explicit is True
    assert result.occurred_at == datetime(2026, 1, 31, 11, 30, tzinfo=UTC)
    assert result.recorded_at == NOW


@pytest.mark.parametrize("reason", [None, ""])
def test_empty_or_null_reason_is_no_reason(reason: str | None) -> None:
    result, _ = parse_result_body(_body(status=FAILED, reason=reason), ALLOWED, NOW)
    assert result.reason is None


def test_null_time_is_no_time() -> None:
    result, explicit = parse_result_body(_body(occurredAt=None), ALLOWED, NOW)
    assert explicit is False
    assert result.occurred_at == NOW


def test_reason_of_exactly_the_limit_is_accepted() -> None:
    reason = "é" * MAX_REASON_CHARS
    result, _ = parse_result_body(_body(status=FAILED, reason=reason), ALLOWED, NOW)
    assert result.reason == reason


@pytest.mark.parametrize(
    "reason",
    [
        "Nicht auf Lager – Größe 42",
        "在庫切れ",
        "نفد من المخزون",
        "sold out 🚚📦",
        "e\u0301 combining accent",
        "line\u2028separator",
        "'; DROP TABLE orders; --",
        '{"$gt": ""} #order :rev ${jndi:ldap://x} ../../etc/passwd',
    ],
)
def test_unicode_and_injection_looking_reasons_are_plain_text(reason: str) -> None:
    raw = json.dumps({"name": "In Stock", "status": FAILED, "reason": reason}, ensure_ascii=False)
    result, _ = parse_result_body(raw.encode(), ALLOWED, NOW)
    assert result.reason == reason


def test_body_of_exactly_the_size_limit_is_accepted() -> None:
    raw = _body()
    padded = raw[:-1] + b" " * (MAX_BODY_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    result, _ = parse_result_body(padded, ALLOWED, NOW)
    assert result.name == "In Stock"


def test_time_up_to_five_minutes_ahead_is_accepted() -> None:
    edge = (NOW + MAX_FUTURE).isoformat()
    result, _ = parse_result_body(_body(occurredAt=edge), ALLOWED, NOW)
    assert result.occurred_at == NOW + MAX_FUTURE


def test_every_allowed_check_name_is_accepted() -> None:
    for name in ALLOWED:
        result, _ = parse_result_body(_body(name=name), ALLOWED, NOW)
        assert result.name == name


# --- refused bodies ------------------------------------------------------------------


def test_body_one_byte_over_the_limit_is_413() -> None:
    raw = b" " * (MAX_BODY_BYTES + 1)
    error = _refusal(raw)
    assert error.status_code == 413
    assert str(MAX_BODY_BYTES) in error.message


@pytest.mark.parametrize("raw", [None, b""])
def test_missing_body_is_refused(raw: bytes | None) -> None:
    error = _refusal(raw)
    assert error.status_code == 400
    assert "empty" in error.message


@pytest.mark.parametrize("raw", [b"null", b"true", b"42", b'"text"', b"[]", b'[{"name": "x"}]'])
def test_json_that_is_not_an_object_is_refused(raw: bytes) -> None:
    assert _refusal(raw).message == "request body must be a JSON object"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "In Stock", "status": "passed"',
        b'{"name": "In Stock", "status": "passed",}',
        b"{'name': 'In Stock'}",
        b'{"name": "\xff\xfe"}',
        b'{"name": "In Stock", "status": "passed"} trailing',
        b'{"name": ' + b"1" * 5000 + b"}",
    ],
)
def test_malformed_json_is_refused_as_not_valid_json(raw: bytes) -> None:
    error = _refusal(raw)
    assert error.status_code == 400
    assert error.message.startswith("request body is not valid JSON")


@pytest.mark.parametrize("depth", [5_000, 8_000])
def test_deep_nesting_inside_a_field_is_refused(depth: int) -> None:
    raw = b'{"name": "In Stock", "status": "passed", "reason": ' + b"[" * depth + b"]" * depth
    raw += b"}"
    assert len(raw) <= MAX_BODY_BYTES
    assert _refusal(raw).message == "request body is nested too deeply"


@pytest.mark.parametrize("value", [5, 1.5, True, ["In Stock"], {"a": 1}])
def test_name_of_the_wrong_type_is_refused(value: Any) -> None:
    error = _refusal(_body(name=value))
    assert (error.field, error.message) == ("name", "'name' must be a string")


@pytest.mark.parametrize("value", [5, True, ["passed"], {"a": 1}, "PASSED", " passed", ""])
def test_status_other_than_passed_or_failed_is_refused(value: Any) -> None:
    error = _refusal(_body(status=value))
    assert error.field == "status"
    assert "'status' must be one of ['passed', 'failed']" == error.message


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_number_as_reason_is_refused(constant: bytes) -> None:
    raw = b'{"name": "In Stock", "status": "failed", "reason": ' + constant + b"}"
    assert _refusal(raw).message == "'reason' must be a string"


@pytest.mark.parametrize(
    "name", ["in stock", "In Stock ", "IN STOCK", "\u0406n Stock", "#order", "OrderID", ""]
)
def test_names_that_are_not_exactly_a_required_check_are_refused(name: str) -> None:
    error = _refusal(_body(name=name))
    assert error.field == "name"
    assert "unknown check name" in error.message
    assert "In Stock" in error.message


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\u200b",
        "\u202e",
        "\ufeff",
        "\ud800",
    ],
)
def test_control_format_and_surrogate_characters_in_reason_are_refused(char: str) -> None:
    error = _refusal(_body(status=FAILED, reason=f"sold{char}out"))
    assert error.field == "reason"
    assert "control characters" in error.message


def test_control_characters_in_the_time_are_refused() -> None:
    error = _refusal(_body(occurredAt="2026-01-31T12:00:00Z\n"))
    assert error.field == "occurredAt"


def test_reason_over_the_limit_is_refused_even_in_wide_characters() -> None:
    error = _refusal(_body(status=FAILED, reason="🚚" * (MAX_REASON_CHARS + 1)))
    assert error.field == "reason"


def test_time_more_than_five_minutes_ahead_is_refused() -> None:
    too_far = (NOW + MAX_FUTURE + timedelta(microseconds=1)).isoformat()
    error = _refusal(_body(occurredAt=too_far))
    assert (error.field, error.message) == ("occurredAt", "'occurredAt' is in the future")


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T12:00:00",
        "2026-01-31",
        "1738324800",
        "2026-02-30T00:00:00Z",
        "2026-01-31T24:00:01Z",
        "${now}",
        "' OR '1'='1",
    ],
)
def test_time_that_is_not_iso_8601_with_offset_is_refused(text: str) -> None:
    error = _refusal(_body(occurredAt=text))
    assert error.field == "occurredAt"
    assert "ISO-8601" in error.message


def test_time_longer_than_40_characters_is_refused() -> None:
    error = _refusal(_body(occurredAt="2026-01-31T12:00:00.000000000000000000000Z"))
    assert error.field == "occurredAt"
    assert "longer than 40" in error.message


@pytest.mark.parametrize("value", [1738324800, ["2026-01-31T12:00:00Z"]])
def test_time_that_is_not_a_string_is_refused(value: Any) -> None:
    error = _refusal(_body(occurredAt=value))
    assert (error.field, error.message) == ("occurredAt", "'occurredAt' must be a string")


def test_time_whose_utc_value_is_out_of_range_is_refused() -> None:
    error = _refusal(_body(occurredAt="0001-01-01T00:00:00+01:00"))
    assert error.field == "occurredAt"


@pytest.mark.parametrize(
    "field", ["admin", "Revision", "OccurredAt", "#order", ":rev", "__proto__", "$where"]
)
def test_unknown_fields_are_refused_by_name(field: str) -> None:
    error = _refusal(_body(**{field: "x"}))
    assert error.field == field
    assert error.message == f"unknown field '{field}'"


def test_unknown_field_names_are_cut_to_64_characters_in_the_answer() -> None:
    error = _refusal(_body(**{"x" * 1000: 1}))
    assert error.field == "x" * 64
    assert len(error.message) < 100


def test_required_fields_are_named_when_missing() -> None:
    assert _refusal(b'{"status": "passed"}').field == "name"
    assert _refusal(b'{"name": "In Stock"}').field == "status"
    assert _refusal(b'{"name": null, "status": "passed"}').message == "'name' is required"


# --- order ids -----------------------------------------------------------------------


@pytest.mark.parametrize("order_id", ["7", "a" * 64, "ORD-2026_01.31", "0-", "x_"])
def test_order_ids_of_the_allowed_alphabet_are_accepted(order_id: str) -> None:
    assert validate_order_id(order_id) == order_id


@pytest.mark.parametrize(
    "order_id",
    [
        "",
        "a" * 65,
        "-",
        "_",
        ".",
        "..",
        ".hidden",
        "a b",
        "a/b",
        "../etc",
        "#order",
        ":rev",
        "${x}",
        "'; DROP TABLE orders; --",
        "é",
        "7\n",
        "\u0661",
        "ｆｕｌｌ",
    ],
)
def test_order_ids_outside_the_alphabet_are_refused(order_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_order_id(order_id)
    assert caught.value.field == "orderId"
    assert caught.value.status_code == 400


# --- the error itself ----------------------------------------------------------------


def test_validation_error_body_names_the_field_when_there_is_one() -> None:
    assert ValidationError("bad", field="name").to_body() == {"error": "bad", "field": "name"}
    assert ValidationError("bad").to_body() == {"error": "bad"}


def test_validation_error_is_a_value_error_with_400_by_default() -> None:
    error = ValidationError("bad")
    assert isinstance(error, ValueError)
    assert error.status_code == 400
    assert str(error) == "bad"
