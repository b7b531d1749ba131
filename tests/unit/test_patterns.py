"""TestEventPattern answered locally (local/patterns.py) and ``python -m local pattern test``.

API_TestEventPattern (https://docs.aws.amazon.com/eventbridge/latest/APIReference/
API_TestEventPattern.html): request ``{"Event": string, "EventPattern": string}``,
response ``{"Result": boolean}``; EventPattern at most 4096 characters; an invalid pattern
is ``InvalidEventPatternException``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.patterns import MAX_PATTERN_CHARS, PatternTestError, answer, evaluate, main_test

EVENT = {
    "version": "0",
    "id": "1",
    "detail-type": "Order Checks Aggregated",
    "source": "event-aggregator",
    "account": "123456789012",
    "time": "2026-01-31T12:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"status": "approved"},
}
APPROVED = {"source": ["event-aggregator"], "detail": {"status": ["approved"]}}


def test_a_matching_event_answers_true_and_another_false() -> None:
    assert evaluate(json.dumps(APPROVED), json.dumps(EVENT)) is True
    rejected = {**EVENT, "detail": {"status": "rejected"}}
    assert evaluate(json.dumps(APPROVED), json.dumps(rejected)) is False


def test_an_invalid_pattern_is_invalid_event_pattern_exception_with_aws_message() -> None:
    with pytest.raises(PatternTestError) as caught:
        evaluate('{"source": "shop"}', json.dumps(EVENT))
    assert caught.value.code == "InvalidEventPatternException"
    assert caught.value.message == (
        'Event pattern is not valid. Reason: "source" must be an object or an array'
    )


@pytest.mark.parametrize("missing", ["id", "account", "source", "time", "region", "detail-type"])
def test_an_event_without_a_mandatory_field_is_not_valid(missing: str) -> None:
    event = {k: v for k, v in EVENT.items() if k != missing}
    with pytest.raises(PatternTestError) as caught:
        evaluate(json.dumps(APPROVED), json.dumps(event))
    assert (caught.value.code, caught.value.message) == (
        "ValidationException",
        "Parameter Event is not valid.",
    )


def test_an_event_that_is_not_a_json_object_is_not_valid() -> None:
    for text in ("[]", "not json", '"text"'):
        with pytest.raises(PatternTestError, match="Parameter Event is not valid."):
            evaluate(json.dumps(APPROVED), text)


def test_a_pattern_over_4096_characters_is_a_validation_error() -> None:
    pattern = json.dumps({"source": ["x" * MAX_PATTERN_CHARS]})
    with pytest.raises(PatternTestError) as caught:
        evaluate(pattern, json.dumps(EVENT))
    assert caught.value.code == "ValidationException"


def test_answer_gives_the_api_shapes() -> None:
    body = json.dumps({"EventPattern": json.dumps(APPROVED), "Event": json.dumps(EVENT)})
    assert answer(body.encode()) == (200, {"Result": True})
    status, error = answer(json.dumps({"Event": json.dumps(EVENT)}).encode())
    assert status == 400 and error["__type"] == "ValidationException"
    assert "eventPattern" in error["message"]
    assert answer(b"{nope")[0] == 400


def test_cli_exit_codes_are_0_match_1_no_match_2_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(EVENT))
    assert main_test(json.dumps(APPROVED), str(event_file)) == 0
    assert json.loads(capsys.readouterr().out) == {"Result": True}
    assert main_test('{"source": ["other"]}', f"file://{event_file}") == 1
    assert json.loads(capsys.readouterr().out) == {"Result": False}
    assert main_test('{"source": "shop"}', str(event_file)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "(InvalidEventPatternException)" in captured.err
    assert '"source" must be an object or an array' in captured.err
    assert main_test(json.dumps(APPROVED), str(tmp_path / "missing.json")) == 2
