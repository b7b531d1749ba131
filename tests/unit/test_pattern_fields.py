"""Matching walks only the fields a pattern names, and decides exactly as walking the
whole event does.

A pattern looks only at the fields it names; the event's other fields are ignored
(eb-event-patterns). Lambda's stream FilterCriteria use the same syntax
(invocation-eventfiltering). So :func:`local.eventbridge.matches` skips every member not
on the way to a named field; this must never change a decision, including
``exists: false``, ``$or``, and the rule that the values matched inside an array of
objects come from one element.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from local import eventbridge
from local.eventbridge import matches

PATTERNS: list[dict[str, Any]] = [
    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"Status": {"S": ["passed"]}}}},
    {"a": {"b": [{"exists": False}]}},
    {"a": {"b": [1], "c": ["x"]}},
    {"$or": [{"a": {"b": [1]}}, {"c": [{"prefix": "x"}]}]},
    {"a": [{"anything-but": ["q"]}], "d": {"e": {"f": [{"numeric": [">", 2]}]}}},
    {"a.b": [1]},
    {"": {"b": [1]}},
]

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f", "x", "a.b", "", "eventName", "dynamodb"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.sampled_from(["x", "xy", "q", "passed", "INSERT", "MODIFY", "S"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
EVENTS = st.dictionaries(KEYS, JSON, max_size=5)


def _walking_everything(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    whole = eventbridge._flatten(event)
    return any(eventbridge._branch_matches(b, whole) for b in eventbridge._compile(pattern))


@given(EVENTS)
def test_walking_only_named_fields_never_changes_a_decision(event: dict[str, Any]) -> None:
    for pattern in PATTERNS:
        assert matches(pattern, event) == _walking_everything(pattern, event)


def test_the_same_element_rule_holds_for_arrays_of_objects() -> None:
    pattern = {"a": {"b": [1], "c": ["x"]}}
    assert not matches(pattern, {"a": [{"b": 1, "c": "y", "z": 0}, {"b": 2, "c": "x"}]})
    assert matches(pattern, {"a": [{"b": 2}, {"b": 1, "c": "x", "z": [0, {"q": 1}]}]})


def test_a_stream_record_matches_on_its_status_whatever_else_its_image_holds() -> None:
    pattern = PATTERNS[0]
    image = {"Status": {"S": "passed"}, "Items": {"L": [{"M": {"S": {"S": "failed"}}}] * 50}}
    assert matches(pattern, {"eventName": "INSERT", "dynamodb": {"NewImage": image}})
    assert not matches(pattern, {"eventName": "REMOVE", "dynamodb": {"NewImage": image}})
