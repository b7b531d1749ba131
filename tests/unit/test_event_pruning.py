"""Matching only the fields a pattern names (local.eventbridge.prune_event) decides
exactly as matching the whole event.

The stream mappings filter every record (Lambda's FilterCriteria use EventBridge's
pattern syntax: invocation-eventfiltering) and prune it to the filters' fields first.
A pattern looks only at the fields it names (eb-event-patterns: "fields not listed in
the pattern are ignored"), so pruning must never change a decision, including
``exists: false``, ``$or`` and the rule that values matched inside an array of objects
come from one element.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from local.eventbridge import matches, pattern_fields, prune_event

PATTERNS: list[dict[str, Any]] = [
    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"Status": {"S": ["passed"]}}}},
    {"a": {"b": [{"exists": False}]}},
    {"a": {"b": [1], "c": ["x"]}},
    {"$or": [{"a": {"b": [1]}}, {"c": [{"prefix": "x"}]}]},
    {"a": [{"anything-but": ["q"]}], "d": {"e": {"f": [{"numeric": [">", 2]}]}}},
    {"a.b": [1]},
]

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f", "x", "a.b", "eventName", "dynamodb"])
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


def _same_decision(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    pruned = prune_event(event, pattern_fields(pattern))
    assert isinstance(pruned, dict)
    assert matches(pattern, pruned) == matches(pattern, event)


@given(EVENTS)
def test_pruning_never_changes_a_decision(event: dict[str, Any]) -> None:
    for pattern in PATTERNS:
        _same_decision(pattern, event)


def test_pruning_keeps_the_same_element_rule_of_arrays() -> None:
    pattern = {"a": {"b": [1], "c": ["x"]}}
    split = {"a": [{"b": 1, "c": "y", "z": 0}, {"b": 2, "c": "x"}]}
    together = {"a": [{"b": 2}, {"b": 1, "c": "x", "z": 0}]}
    assert not matches(pattern, prune_event(split, pattern_fields(pattern)))  # type: ignore[arg-type]
    assert matches(pattern, prune_event(together, pattern_fields(pattern)))  # type: ignore[arg-type]


def test_pruning_drops_what_no_pattern_names() -> None:
    pattern = PATTERNS[0]
    record = {
        "eventName": "INSERT",
        "eventID": "1",
        "dynamodb": {
            "Keys": {"pk": {"S": "7"}},
            "NewImage": {"Status": {"S": "passed"}, "Items": {"L": [{"S": "big"}] * 50}},
        },
    }
    assert prune_event(record, pattern_fields(pattern)) == {
        "eventName": "INSERT",
        "dynamodb": {"NewImage": {"Status": {"S": "passed"}}},
    }
    assert matches(pattern, record)


def test_the_fields_of_every_alternative_are_named() -> None:
    assert pattern_fields({"$or": [{"a": {"b": [1]}}, {"c": [2]}], "d": [3]}) == {
        "a.b",
        "c",
        "d",
    }
