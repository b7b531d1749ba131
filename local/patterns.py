"""EventBridge's ``TestEventPattern``, answered locally with :mod:`local.eventbridge`.

moto does not implement ``TestEventPattern``; the runtime's proxy in front of the
embedded AWS (:mod:`local.faults`) answers it with :func:`answer`, the web UI's sandbox
calls :func:`evaluate`, and ``python -m local pattern test`` prints the same
answer. From API_TestEventPattern:

* request ``{"EventPattern": "<json>", "Event": "<json>"}``, both strings, both required;
  ``EventPattern`` at most 4096 characters;
* response ``{"Result": true|false}``;
* an invalid pattern is ``InvalidEventPatternException`` with AWS's reason
  (``Event pattern is not valid. Reason: ...``, the matcher's messages, checked against
  the conformance suite); an event that is not a JSON object, or lacks one of the
  fields the API names as mandatory, is ``ValidationException``
  ``Parameter Event is not valid.``. The API also names ``resources`` as mandatory, but
  AWS answered the recorded conformance cases whose events have no ``resources``
  (tests/conformance/eventbridge-patterns), so it is not required here either.

Example::

    evaluate('{"source": ["shop"]}', '{"id": "1", "source": "shop", ...}')  # True
    status, body = answer(b'{"EventPattern": "{}", "Event": "{}"}')   # 400, ValidationException
"""

from __future__ import annotations

import json
import sys
from typing import Any

from local.eventbridge import InvalidEventPattern, matches, validate

TARGET = "AWSEvents.TestEventPattern"
MAX_PATTERN_CHARS = 4096
# API_TestEventPattern: mandatory event fields (``resources`` left out, see above).
EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")
INVALID_EVENT = "Parameter Event is not valid."


class PatternTestError(ValueError):
    """What AWS answers instead of a result: ``code`` (``__type``) and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def _required_text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str):
        raise PatternTestError(
            "ValidationException",
            f"1 validation error detected: Value null at '{name[0].lower() + name[1:]}' "
            "failed to satisfy constraint: Member must not be null",
        )
    return value


def _event(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except ValueError:
        raise PatternTestError("ValidationException", INVALID_EVENT) from None
    if not isinstance(event, dict) or any(key not in event for key in EVENT_FIELDS):
        raise PatternTestError("ValidationException", INVALID_EVENT)
    return event


def evaluate(pattern: str, event: str) -> bool:
    """Whether ``event`` (JSON text) matches ``pattern`` (JSON text), as AWS answers
    ``TestEventPattern``; raises :class:`PatternTestError` with AWS's code and message."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternTestError(
            "ValidationException",
            "1 validation error detected: Value at 'eventPattern' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_PATTERN_CHARS}",
        )
    try:
        # The pattern as raw text: a key repeated in one object is seen, as AWS sees it.
        validate(pattern)
    except InvalidEventPattern as err:
        raise PatternTestError("InvalidEventPatternException", str(err)) from None
    return matches(pattern, _event(event))


def evaluate_request(request: Any) -> bool:
    """``TestEventPattern`` for a decoded request body."""
    if not isinstance(request, dict):
        raise PatternTestError("SerializationException", "Start of structure or map found")
    return evaluate(_required_text(request, "EventPattern"), _required_text(request, "Event"))


def answer(body: bytes) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON document of a ``TestEventPattern`` request body."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "body is not JSON"}
    try:
        return 200, {"Result": evaluate_request(request)}
    except PatternTestError as err:
        return 400, err.as_json()


def read_json_argument(value: str) -> str:
    """``FILE_OR_JSON``: the text of a file (``file://PATH`` or a path that exists), else
    ``value`` itself as JSON text."""
    from pathlib import Path

    path = Path(value.removeprefix("file://"))
    if value.startswith("file://") or (
        not value.lstrip().startswith(("{", "[")) and path.is_file()
    ):
        return path.read_text(encoding="utf-8")
    return value


def main_test(pattern_argument: str, event_argument: str) -> int:
    """``python -m local pattern test``: prints ``{"Result": ...}`` or AWS's error; exit
    0 on a match, 1 on no match, 2 on an error."""
    try:
        pattern = read_json_argument(pattern_argument)
        event = read_json_argument(event_argument)
    except OSError as err:
        print(f"cannot read {err.filename}: {err.strerror}", file=sys.stderr)
        return 2
    try:
        result = evaluate(pattern, event)
    except PatternTestError as err:
        print(
            f"An error occurred ({err.code}) when calling the TestEventPattern operation: "
            f"{err.message}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps({"Result": result}))
    return 0 if result else 1
