"""The completion policy (``chalicelib.policy``): groups, declarations, the document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.config import ConfigurationError, load_settings
from chalicelib.domain import (
    APPROVED,
    FAILED,
    PASSED,
    PENDING,
    REJECTED,
    CheckResult,
    Declaration,
    Order,
    decision,
)
from chalicelib.policy import (
    ADD,
    AT_LEAST,
    CompletionPolicy,
    Group,
    PolicyError,
    all_group,
    deadline_of,
    parse_policy,
    problem_outcome,
    timed_out,
)

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
CHECKS = ("A", "B", "C", "D", "E")
DEFAULT = ("A", "B")


def _order(statuses: dict[str, str], declaration: Declaration | None = None) -> Order:
    results = {name: CheckResult(name, status, T0) for name, status in statuses.items()}
    return Order("7", results, declaration=declaration)


statuses = st.dictionaries(st.sampled_from(CHECKS), st.sampled_from([PASSED, FAILED]))


@st.composite
def groups(draw: st.DrawFn) -> Group:
    checks = tuple(draw(st.lists(st.sampled_from(CHECKS), min_size=1, unique=True)))
    needed = draw(st.integers(1, len(checks)))
    return Group("g", AT_LEAST, checks, needed)


@st.composite
def policies(draw: st.DrawFn) -> CompletionPolicy:
    found = draw(st.lists(groups(), min_size=1, max_size=3))
    named = tuple(Group(f"g{i}", g.kind, g.checks, g.needed) for i, g in enumerate(found))
    return CompletionPolicy(named)


# --- the default policy is the rule the app always had ------------------------------


@given(statuses)
def test_default_policy_decides_exactly_like_the_required_checks_rule(
    given_statuses: dict[str, str],
) -> None:
    order = _order(given_statuses)
    assert CompletionPolicy.default(DEFAULT).evaluate(order).status == decision(order, DEFAULT)


# --- properties ---------------------------------------------------------------------


@st.composite
def arrivals(draw: st.DrawFn) -> list[CheckResult]:
    """Results, several per check possible, each with its own time."""
    return draw(
        st.lists(
            st.builds(
                CheckResult,
                st.sampled_from(CHECKS),
                st.sampled_from([PASSED, FAILED]),
                st.integers(0, 5).map(lambda m: T0 + timedelta(minutes=m)),
            ),
            max_size=12,
        )
    )


def _stored(results: list[CheckResult]) -> dict[str, CheckResult]:
    """What the store keeps: per check, the result with the newest revision."""
    stored: dict[str, CheckResult] = {}
    for result in results:
        if result.name not in stored or stored[result.name].revision < result.revision:
            stored[result.name] = result
    return stored


@given(policies(), arrivals(), st.randoms())
def test_decision_does_not_depend_on_the_arrival_order(
    policy: CompletionPolicy, results: list[CheckResult], random: Random
) -> None:
    shuffled = list(results)
    random.shuffle(shuffled)
    first = policy.evaluate(Order("7", _stored(results)))
    second = policy.evaluate(Order("7", _stored(shuffled)))
    assert first.status == second.status
    assert first.counts() == second.counts()


@given(policies(), statuses, st.sampled_from(CHECKS))
def test_a_passed_result_never_turns_an_approved_order_rejected(
    policy: CompletionPolicy, given_statuses: dict[str, str], check: str
) -> None:
    before = policy.evaluate(_order(given_statuses)).status
    after = policy.evaluate(_order({**given_statuses, check: PASSED})).status
    if before == APPROVED:
        assert after == APPROVED
    assert not (before == APPROVED and after == REJECTED)


@given(groups(), statuses)
def test_at_least_rejects_exactly_when_success_became_impossible(
    group: Group, given_statuses: dict[str, str]
) -> None:
    evaluation = group.evaluate(_order(given_statuses).results)
    passed = sum(given_statuses.get(c) == PASSED for c in group.checks)
    unreported = sum(c not in given_statuses for c in group.checks)
    # Success is possible while every unreported check could still pass.
    possible = passed + unreported >= group.needed
    assert (evaluation.status == REJECTED) == (not possible)
    assert (evaluation.status == APPROVED) == (passed >= group.needed)


# --- examples -----------------------------------------------------------------------


def test_two_of_three_is_approved_on_the_second_pass() -> None:
    policy = CompletionPolicy((Group("approvers", AT_LEAST, ("A", "B", "C"), 2),))
    assert policy.evaluate(_order({"A": PASSED})).status == PENDING
    assert policy.evaluate(_order({"A": PASSED, "B": FAILED})).status == PENDING
    approved = policy.evaluate(_order({"A": PASSED, "B": FAILED, "C": PASSED}))
    assert approved.status == APPROVED
    assert approved.counts() == {"approvers": {"passed": 2, "failed": 1, "remaining": 0}}


def test_two_of_three_is_rejected_on_the_second_fail() -> None:
    policy = CompletionPolicy((Group("approvers", AT_LEAST, ("A", "B", "C"), 2),))
    assert policy.evaluate(_order({"A": FAILED})).status == PENDING
    rejected = policy.evaluate(_order({"A": FAILED, "C": FAILED}))
    assert rejected.status == REJECTED
    assert rejected.counts() == {"approvers": {"passed": 0, "failed": 2, "remaining": 1}}


def test_a_declaration_replaces_the_default_groups_by_default() -> None:
    policy = CompletionPolicy.default(DEFAULT)
    declared = Declaration(("A",))
    evaluation = policy.evaluate(_order({"A": PASSED}, declared))
    assert evaluation.status == APPROVED
    assert evaluation.expected == ["A"]
    assert list(evaluation.counts()) == ["declared"]


def test_a_declaration_can_be_added_to_the_policy_groups() -> None:
    policy = CompletionPolicy((all_group("core", ("A",)),), declared_checks=ADD)
    declared = Declaration(("C",))
    assert policy.evaluate(_order({"A": PASSED}, declared)).status == PENDING
    evaluation = policy.evaluate(_order({"A": PASSED, "C": PASSED}, declared))
    assert evaluation.status == APPROVED
    assert evaluation.expected == ["A", "C"]


def test_an_undeclared_order_waits_when_a_declaration_is_required() -> None:
    policy = CompletionPolicy.default(DEFAULT, require_declaration=True)
    for given_statuses in ({"A": PASSED, "B": PASSED}, {"A": FAILED}):
        evaluation = policy.evaluate(_order(given_statuses))
        assert evaluation.status == PENDING
        assert evaluation.awaiting_declaration
    assert policy.evaluate(_order({"A": PASSED}, Declaration(("A",)))).status == APPROVED


def test_the_declared_deadline_is_the_orders_deadline() -> None:
    opened = Order("7", {}, deadline=T0)
    assert deadline_of(opened) == T0
    later = T0 + timedelta(hours=1)
    declared = Order("7", {}, deadline=T0, declaration=Declaration(("A",), later))
    assert deadline_of(declared) == later
    policy = CompletionPolicy.default(DEFAULT)
    assert not timed_out(declared, policy, T0 + timedelta(minutes=59))
    assert timed_out(declared, policy, later)


def test_a_timed_out_problem_names_what_was_missing_per_group() -> None:
    policy = CompletionPolicy(
        (all_group("core", ("A", "B")), Group("approvers", AT_LEAST, ("C", "D", "E"), 2))
    )
    outcome = problem_outcome(_order({"A": PASSED, "C": PASSED}), policy, T0, "timed-out")
    assert outcome.problem is not None
    assert outcome.problem["missing"] == ["B", "D", "E"]
    assert outcome.problem["groups"] == {
        "core": {"needed": 2, "passed": ["A"], "missing": ["B"]},
        "approvers": {"needed": 2, "passed": ["C"], "missing": ["D", "E"]},
    }


def test_a_timed_out_undeclared_order_says_its_declaration_was_missing() -> None:
    policy = CompletionPolicy.default(DEFAULT, require_declaration=True)
    outcome = problem_outcome(_order({"A": PASSED, "B": PASSED}), policy, T0, "timed-out")
    assert outcome.problem is not None
    assert outcome.problem["declarationMissing"] is True


# --- the COMPLETION_POLICY document and the settings --------------------------------

KNOWN = ("A", "B", "C", "D")


def test_a_document_with_every_kind_of_group_is_read() -> None:
    document = {
        "groups": [
            {"name": "core", "all": ["A"]},
            {"name": "approvers", "atLeast": 2, "of": ["B", "C", "D"]},
            {"name": "either", "any": ["C", "D"]},
        ],
        "declaredChecks": "add",
    }
    policy = parse_policy(document, KNOWN, ("A",))
    assert [(g.name, g.kind, g.needed) for g in policy.groups] == [
        ("core", "all", 1),
        ("approvers", "atLeast", 2),
        ("either", "any", 1),
    ]
    assert policy.declared_checks == ADD


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a JSON object"),
        ({"groups": []}, "non-empty list of groups"),
        ({"groups": [{"name": "g", "all": ["A"]}], "extra": 1}, "unknown key 'extra'"),
        ({"groups": [{"all": ["A"]}]}, "groups[0].name"),
        ({"groups": [{"name": "g", "all": ["A"], "any": ["B"]}]}, "exactly one of"),
        ({"groups": [{"name": "g", "all": ["Z"]}]}, "'Z', which is in neither"),
        ({"groups": [{"name": "g", "all": ["A", "A"]}]}, "names a check twice"),
        ({"groups": [{"name": "g", "atLeast": 3, "of": ["A", "B"]}]}, "from 1 to 2"),
        ({"groups": [{"name": "g", "atLeast": True, "of": ["A", "B"]}]}, "whole number"),
        ({"groups": [{"name": "g", "atLeast": 1}]}, "groups[0].of"),
        ({"groups": [{"name": "g", "all": ["A"], "of": ["B"]}]}, "'of' goes with 'atLeast'"),
        ({"groups": [{"name": "g", "all": ["A"]}, {"name": "g", "any": ["B"]}]}, "same name"),
        ({"groups": [{"name": "g", "all": ["A"]}], "declaredChecks": "merge"}, "'declaredChecks'"),
        ({"groups": [{"name": "g", "all": ["B"]}]}, "REQUIRED_CHECKS names 'A'"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_fault(document: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(document, KNOWN, ("A",))


def test_settings_without_a_policy_use_one_all_group_of_the_required_checks() -> None:
    settings = load_settings({"OPTIONAL_CHECKS": "Fraud Check"})
    assert settings.optional_checks == ("Fraud Check",)
    assert settings.known_checks == ("Account Check", "In Stock", "Fraud Check")
    assert settings.policy == CompletionPolicy.default(("Account Check", "In Stock"))


def test_settings_read_the_policy_and_require_declaration() -> None:
    document = {"groups": [{"name": "g", "atLeast": 1, "of": ["Account Check", "In Stock"]}]}
    settings = load_settings(
        {"COMPLETION_POLICY": json.dumps(document), "REQUIRE_DECLARATION": "true"}
    )
    assert settings.require_declaration
    assert settings.policy.require_declaration
    assert settings.policy.groups[0].needed == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COMPLETION_POLICY": "{not json"}, "COMPLETION_POLICY is not valid JSON"),
        ({"COMPLETION_POLICY": '{"groups": [{"name": "g", "all": ["X"]}]}'}, "COMPLETION_POLICY:"),
        ({"OPTIONAL_CHECKS": "In Stock"}, "which REQUIRED_CHECKS already names"),
        ({"OPTIONAL_CHECKS": "status"}, "must match"),
        ({"REQUIRE_DECLARATION": "yes"}, "REQUIRE_DECLARATION must be 'true' or 'false'"),
    ],
)
def test_bad_policy_settings_stop_the_app_with_a_clear_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ)


def test_a_check_cannot_be_named_like_the_groups_key_of_the_event() -> None:
    with pytest.raises(ConfigurationError, match="must match"):
        load_settings({"REQUIRED_CHECKS": "groups"})
