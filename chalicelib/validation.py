"""Validation of what sources send: every problem named, nothing guessed.

Example::

    result = parse_result_body(b'{"name": "In Stock", "status": "passed"}',
                               allowed=("In Stock",), now=now)
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import (
    CHECK_STATUSES,
    MAX_REASON_CHARS,
    CheckResult,
    Declaration,
    parse_time,
)

MAX_BODY_BYTES = 16 * 1024
MAX_TIME_CHARS = 40
MAX_FUTURE = timedelta(minutes=5)
ORDER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FIELDS = frozenset({"name", "status", "reason", "occurredAt"})
# Bodies are flat objects; anything nested deeper is refused the same way on every Python
# (3.13's parser takes depths that raised RecursionError on 3.11).
MAX_DEPTH = 32


class ValidationError(ValueError):
    """Input that is refused; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, message: str, field: str | None = None, status_code: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status_code = status_code

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return body


def validate_order_id(order_id: str) -> str:
    if not ORDER_ID_PATTERN.fullmatch(order_id):
        raise ValidationError(
            "order id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit",
            field="orderId",
        )
    return order_id


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text)


def _load_json(raw: bytes | None) -> Any:
    if raw is None or raw == b"":
        raise ValidationError("request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationError(
            f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}",
            status_code=413,
        )
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ValidationError("request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValidationError(f"request body is not valid JSON: {err}") from None
    if _depth(body) > MAX_DEPTH:
        raise ValidationError("request body is nested too deeply")
    return body


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, (dict, list)):
                if level + 1 > MAX_DEPTH:
                    return level + 1
                stack.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


def _string_field(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string", field=name)
    if len(value) > limit:
        raise ValidationError(f"'{name}' is longer than {limit} characters", field=name)
    if _has_control_chars(value):
        raise ValidationError(f"'{name}' contains control characters", field=name)
    return value


def _time_field(body: dict[str, Any], name: str) -> datetime | None:
    """An optional ISO-8601 time with a UTC offset, or a 400 naming the field."""
    text = _string_field(body, name, MAX_TIME_CHARS)
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ValidationError(
            f"'{name}' must be an ISO-8601 time with a UTC offset, e.g. 2026-01-31T12:00:00Z",
            field=name,
        ) from None


def _occurred_at(body: dict[str, Any], now: datetime) -> datetime | None:
    moment = _time_field(body, "occurredAt")
    if moment is None:
        return None
    if moment > now + MAX_FUTURE:
        raise ValidationError("'occurredAt' is in the future", field="occurredAt")
    return moment


def parse_result_body(
    raw: bytes | None, allowed: tuple[str, ...], now: datetime
) -> tuple[CheckResult, bool]:
    """Parse a POSTed result. Returns it and whether ``occurredAt`` was given."""
    body = _load_json(raw)
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field '{unknown[0][:64]}'", field=unknown[0][:64])
    name = _string_field(body, "name", 64)
    if name is None:
        raise ValidationError("'name' is required", field="name")
    if name not in allowed:
        raise ValidationError(f"unknown check name; expected one of {list(allowed)}", field="name")
    status = body.get("status")
    if status is None:
        raise ValidationError("'status' is required", field="status")
    if not isinstance(status, str) or status not in CHECK_STATUSES:
        raise ValidationError(f"'status' must be one of {list(CHECK_STATUSES)}", field="status")
    reason = _string_field(body, "reason", MAX_REASON_CHARS)
    occurred_at = _occurred_at(body, now)
    result = CheckResult(
        name=name,
        status=status,
        occurred_at=occurred_at or now,
        reason=reason or None,
        recorded_at=now,
    )
    return result, occurred_at is not None


DECLARATION_FIELDS = frozenset({"checks", "deadline"})
MAX_DECLARED_CHECKS = 64


def _declared_checks(body: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, ...]:
    checks = body.get("checks")
    if checks is None:
        raise ValidationError("'checks' is required", field="checks")
    if not isinstance(checks, list) or not checks:
        raise ValidationError("'checks' must be a non-empty list of check names", field="checks")
    if len(checks) > MAX_DECLARED_CHECKS:
        raise ValidationError(
            f"'checks' names more than {MAX_DECLARED_CHECKS} checks", field="checks"
        )
    for name in checks:
        if not isinstance(name, str) or name not in allowed:
            shown = name[:64] if isinstance(name, str) else name
            raise ValidationError(
                f"unknown check name {shown!r} in 'checks'; expected names from {list(allowed)}",
                field="checks",
            )
    if len(set(checks)) != len(checks):
        raise ValidationError("'checks' names a check twice", field="checks")
    return tuple(checks)


def _deadline(body: dict[str, Any], now: datetime) -> datetime | None:
    moment = _time_field(body, "deadline")
    if moment is None:
        return None
    if moment <= now:
        raise ValidationError("'deadline' is not in the future", field="deadline")
    return moment


def parse_declaration_body(
    raw: bytes | None, allowed: tuple[str, ...], now: datetime
) -> Declaration:
    """Parse a ``PUT /orders/{id}`` body: ``{"checks": [...], "deadline": "<optional>"}``."""
    body = _load_json(raw)
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    unknown = sorted(set(body) - DECLARATION_FIELDS)
    if unknown:
        raise ValidationError(f"unknown field '{unknown[0][:64]}'", field=unknown[0][:64])
    checks = _declared_checks(body, allowed)
    return Declaration(checks, _deadline(body, now), declared_at=now)
