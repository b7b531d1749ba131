"""The local EventBridge pattern matcher against outcomes recorded on AWS, plus small
tests of each operator.

The conformance cases live in ``tests/conformance/eventbridge-patterns`` (see its
``ORIGIN.md``): ``NAME.json5`` must match, ``NAME_NEG.json5`` must not, and
``NAME_EXC.json5`` must be rejected with the message AWS returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import json5
import pytest

from local.eventbridge import InvalidEventPattern, matches, validate

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance" / "eventbridge-patterns"
TEMPLATES = CONFORMANCE / "templates"
CASES = sorted(TEMPLATES.glob("*.json5"))


def _recorded_errors() -> dict[str, str]:
    """Case name -> the error message AWS returned for it."""
    snapshot = json.loads((CONFORMANCE / "aws-recorded-errors.snapshot.json").read_text())
    errors: dict[str, str] = {}
    for key, entry in snapshot.items():
        name = key.rsplit("[", 1)[-1].rstrip("]")
        recorded = entry["recorded-content"].get(name)
        if isinstance(recorded, dict) and "exception_message" in recorded:
            errors[name] = recorded["exception_message"]["Error"]["Message"]
    return errors


RECORDED_ERRORS = _recorded_errors()


def _load(path: Path) -> tuple[dict[str, object], dict[str, object]]:
    """The (pattern, event) of one case."""
    case = json5.loads(path.read_text(encoding="utf-8"))
    return case["EventPattern"], case["Event"]


def _cases(kind: str) -> list[Path]:
    """The cases of one kind: "match", "NEG" or "EXC"."""

    def kind_of(path: Path) -> str:
        suffix = path.stem.rsplit("_", 1)[-1]
        return suffix if suffix in ("NEG", "EXC") else "match"

    return [path for path in CASES if kind_of(path) == kind]


def test_conformance_data_is_complete() -> None:
    assert len(CASES) == 155
    assert (len(_cases("match")), len(_cases("NEG")), len(_cases("EXC"))) == (66, 51, 38)
    assert {path.stem for path in _cases("EXC")} <= set(RECORDED_ERRORS)


@pytest.mark.parametrize("path", _cases("match"), ids=lambda path: path.stem)
def test_aws_match(path: Path) -> None:
    pattern, event = _load(path)
    assert matches(pattern, event) is True


@pytest.mark.parametrize("path", _cases("NEG"), ids=lambda path: path.stem)
def test_aws_no_match(path: Path) -> None:
    pattern, event = _load(path)
    assert matches(pattern, event) is False


@pytest.mark.parametrize("path", _cases("EXC"), ids=lambda path: path.stem)
def test_aws_rejects_pattern(path: Path) -> None:
    pattern, event = _load(path)
    with pytest.raises(InvalidEventPattern) as caught:
        matches(pattern, event)
    assert str(caught.value) == RECORDED_ERRORS[path.stem]
    with pytest.raises(InvalidEventPattern):
        validate(pattern)


def test_aws_duplicate_key_pattern_read_as_raw_json() -> None:
    pattern = (TEMPLATES / "complex_multi_key_event_pattern.json").read_text(encoding="utf-8")
    event = (TEMPLATES / "complex_multi_key_event.json").read_text(encoding="utf-8")
    assert pattern.count('"location"') == 2
    assert matches(pattern, event) is True


# --------------------------------------------------------------------------- own tests


def _ev(detail: object) -> dict[str, object]:
    """A minimal event with the given detail."""
    return {"source": "shop", "detail-type": "Order", "detail": detail}


def _detail(field: str, *values: object) -> dict[str, object]:
    """A pattern on ``detail.<field>``."""
    return {"detail": {field: list(values)}}


def test_duplicate_key_later_occurrence_wins() -> None:
    later_prefix = (
        '{"detail": {"location": [{"anything-but": "us-east"}], "location": [{"prefix": "us-"}]}}'
    )
    assert matches(later_prefix, _ev({"location": "eu-central-1"})) is False
    assert matches(later_prefix, _ev({"location": "us-east"})) is True
    with pytest.raises(InvalidEventPattern, match="Empty arrays are not allowed"):
        validate('{"a": [], "a": ["x"]}')  # the overridden occurrence is still validated


def test_exact_values_of_every_type() -> None:
    event = _ev({"s": "on", "n": 300.0, "t": True, "f": False, "z": None})
    assert matches(_detail("s", "on"), event)
    assert not matches(_detail("s", "ON"), event)
    assert matches(_detail("n", 300), event)
    assert not matches(_detail("n", "300"), event)
    assert matches(_detail("t", True), event)
    assert not matches(_detail("t", 1), event)
    assert matches(_detail("f", False), event)
    assert matches(_detail("z", None), event)


def test_value_list_is_any_of_and_fields_are_all_of() -> None:
    pattern = {"source": ["shop", "store"], "detail": {"state": ["paid", "sent"]}}
    assert matches(pattern, _ev({"state": "sent"}))
    assert not matches(pattern, _ev({"state": "open"}))
    assert not matches({"source": ["store"], "detail": {"state": ["sent"]}}, _ev({"state": "sent"}))


def test_null_empty_string_and_missing_are_different() -> None:
    assert matches(_detail("v", None), _ev({"v": None}))
    assert not matches(_detail("v", None), _ev({"v": ""}))
    assert not matches(_detail("v", None), _ev({}))
    assert matches(_detail("v", ""), _ev({"v": ""}))
    assert not matches(_detail("v", ""), _ev({"v": None}))
    assert not matches(_detail("v", ""), _ev({}))


def test_event_array_matches_if_any_element_matches() -> None:
    assert matches(_detail("tags", "b", "z"), _ev({"tags": ["a", "b"]}))
    assert not matches(_detail("tags", "z"), _ev({"tags": ["a", "b"]}))
    assert not matches(_detail("tags", "a"), _ev({"tags": []}))


def test_nested_objects_and_dotted_names() -> None:
    event = _ev({"order": {"state": {"code": "paid"}}})
    assert matches({"detail": {"order": {"state": {"code": ["paid"]}}}}, event)
    assert matches({"detail": {"order.state.code": ["paid"]}}, event)
    assert not matches({"detail": {"order": {"state": ["paid"]}}}, event)


def test_array_of_objects_fields_must_share_one_element() -> None:
    event = _ev({"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}]})
    assert matches({"detail": {"items": {"sku": ["b"], "qty": [5]}}}, event)
    assert not matches({"detail": {"items": {"sku": ["a"], "qty": [5]}}}, event)


def test_exists_true_false_and_leaf_only() -> None:
    event = _ev({"a": "x", "obj": {"inner": 1}, "empty": [], "nothing": None})
    assert matches(_detail("a", {"exists": True}), event)
    assert matches(_detail("nothing", {"exists": True}), event)
    assert not matches(_detail("obj", {"exists": True}), event)  # not a leaf
    assert matches(_detail("obj", {"exists": False}), event)
    assert not matches(_detail("empty", {"exists": True}), event)
    assert matches(_detail("missing", {"exists": False}), event)
    assert not matches(_detail("a", {"exists": False}), event)


def test_prefix_and_suffix_with_and_without_case() -> None:
    event = _ev({"file": "Report.PDF"})
    assert matches(_detail("file", {"prefix": "Rep"}), event)
    assert not matches(_detail("file", {"prefix": "rep"}), event)
    assert matches(_detail("file", {"prefix": {"equals-ignore-case": "rEP"}}), event)
    assert matches(_detail("file", {"suffix": ".PDF"}), event)
    assert not matches(_detail("file", {"suffix": ".pdf"}), event)
    assert matches(_detail("file", {"suffix": {"equals-ignore-case": ".pdf"}}), event)
    assert not matches(_detail("n", {"prefix": "1"}), _ev({"n": 12}))


def test_equals_ignore_case() -> None:
    assert matches(_detail("s", {"equals-ignore-case": "PaId"}), _ev({"s": "paid"}))
    assert not matches(_detail("s", {"equals-ignore-case": "paid"}), _ev({"s": "paidx"}))


def test_anything_but_forms() -> None:
    assert matches(_detail("s", {"anything-but": "a"}), _ev({"s": "b"}))
    assert not matches(_detail("s", {"anything-but": ["a", "b"]}), _ev({"s": "b"}))
    assert matches(_detail("s", {"anything-but": "a"}), _ev({"s": None}))
    assert not matches(_detail("s", {"anything-but": "a"}), _ev({}))
    assert not matches(_detail("n", {"anything-but": [1, 2]}), _ev({"n": 2.0}))
    assert matches(_detail("s", {"anything-but": {"prefix": "us-"}}), _ev({"s": "eu-west-1"}))
    assert not matches(
        _detail("s", {"anything-but": {"suffix": [".png", ".gif"]}}), _ev({"s": "a.gif"})
    )
    assert not matches(_detail("s", {"anything-but": {"equals-ignore-case": "A"}}), _ev({"s": "a"}))
    assert not matches(
        _detail("s", {"anything-but": {"wildcard": "*/lib/*"}}), _ev({"s": "x/lib/y"})
    )
    assert matches(_detail("s", {"anything-but": {"wildcard": "*/lib/*"}}), _ev({"s": 7}))


def test_numeric_matches_numbers_only() -> None:
    pattern = _detail("n", {"numeric": [">", 0, "<=", 5]})
    assert matches(pattern, _ev({"n": 5}))
    assert matches(pattern, _ev({"n": 0.5}))
    assert not matches(pattern, _ev({"n": 0}))
    assert not matches(pattern, _ev({"n": "3"}))
    assert not matches(pattern, _ev({"n": True}))
    assert matches(_detail("n", {"numeric": ["=", 301.8]}), _ev({"n": 3.018e2}))
    assert matches(_detail("n", {"numeric": ["<", 0]}), _ev({"n": -1}))


def test_cidr_ipv4_and_ipv6() -> None:
    assert matches(_detail("ip", {"cidr": "10.0.0.0/24"}), _ev({"ip": "10.0.0.255"}))
    assert not matches(_detail("ip", {"cidr": "10.0.0.0/24"}), _ev({"ip": "10.0.1.0"}))
    assert not matches(_detail("ip", {"cidr": "10.0.0.0/24"}), _ev({"ip": "::1"}))
    assert matches(_detail("ip", {"cidr": "10.0.0.7/24"}), _ev({"ip": "10.0.0.1"}))
    assert matches(_detail("ip", {"cidr": "2001:db8::/32"}), _ev({"ip": "2001:DB8:0:1::7"}))
    assert not matches(_detail("ip", {"cidr": "2001:db8::/32"}), _ev({"ip": "2001:db9::1"}))


def test_wildcard_and_its_escapes() -> None:
    assert matches(_detail("p", {"wildcard": "a*c"}), _ev({"p": "abbbc"}))
    assert matches(_detail("p", {"wildcard": "a*c"}), _ev({"p": "ac"}))
    assert not matches(_detail("p", {"wildcard": "a*c"}), _ev({"p": "acb"}))
    assert matches(_detail("p", {"wildcard": "a\\*c"}), _ev({"p": "a*c"}))
    assert not matches(_detail("p", {"wildcard": "a\\*c"}), _ev({"p": "abc"}))
    assert matches(_detail("p", {"wildcard": "a\\\\*"}), _ev({"p": "a\\bc"}))
    with pytest.raises(InvalidEventPattern, match=r"Invalid escape character at pos 3$"):
        validate(_detail("p", {"wildcard": "ab\\c"}))


def test_or_between_fields() -> None:
    pattern = {"source": ["shop"], "$or": [{"detail": {"a": [1]}}, {"detail": {"b": [2]}}]}
    assert matches(pattern, _ev({"a": 0, "b": 2}))
    assert not matches(pattern, _ev({"a": 0, "b": 0}))


MIXED_ANYTHING_BUT = (
    "Inside anything but list, either all values are number or string, mixed type is not supported"
)


def test_validation_messages() -> None:
    cases: list[tuple[object, str]] = [
        ({}, "Empty objects are not allowed"),
        ({"a": {}}, "Empty objects are not allowed"),
        ({"a": [[1]]}, "Match value must be String, number, true, false, or null"),
        ({"a": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "Only one key allowed in match expression"),
        ({"a": [{"numeric": ["!", 1]}]}, "Unrecognized numeric range operator: !"),
        ({"a": [{"numeric": [">", 6e9]}]}, "Value must be between -5.0E9 and 5.0E9, inclusive"),
        ({"a": [{"anything-but": ["x", 1]}]}, MIXED_ANYTHING_BUT),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "IPv4 mask bits must be < 32"),
        ({"$or": [{"a": ["x"]}]}, "There must have at least 2 Objects in $or relationship."),
    ]
    for pattern, reason in cases:
        with pytest.raises(InvalidEventPattern) as caught:
            validate(pattern)  # type: ignore[arg-type]
        assert str(caught.value) == f"Event pattern is not valid. Reason: {reason}"
    with pytest.raises(InvalidEventPattern, match="Filter is not an object"):
        validate('["not", "an", "object"]')


def test_event_must_be_a_json_object() -> None:
    with pytest.raises(ValueError, match="Parameter Event is not valid."):
        matches({"a": ["x"]}, "[1, 2]")
