"""Orders, check results and the completion logic of ``chalicelib.domain`` (pure Python)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.domain import (
    APPROVED,
    FAILED,
    INVOICED,
    MAX_REASON_CHARS,
    PASSED,
    PENDING,
    REJECTED,
    TIMED_OUT,
    CheckResult,
    Order,
    Outcome,
    content_digest,
    decision,
    failed_checks,
    format_time,
    invoice_id,
    invoice_outcome,
    is_late,
    missing_checks,
    order_status,
    parse_time,
    problem_outcome,
    timed_out,
)

REQUIRED = ("Account Check", "In Stock")
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _result(name: str, status: str, minutes: int = 0, reason: str | None = None) -> CheckResult:
    return CheckResult(name, status, T0 + timedelta(minutes=minutes), reason)


def _order(
    *results: CheckResult, outcome: Outcome | None = None, deadline: datetime | None = None
) -> Order:
    return Order("7", {r.name: r for r in results}, outcome, deadline)


# --- time ----------------------------------------------------------------------------


def test_format_time_is_utc_with_microseconds_and_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 31, 14, 0, 0, 5, tzinfo=plus_two)) == (
        "2026-01-31T12:00:00.000005Z"
    )


def test_format_time_string_order_is_time_order() -> None:
    moments = [T0 + timedelta(microseconds=n * 999_999) for n in range(-40, 40)]
    texts = [format_time(m) for m in moments]
    assert sorted(texts) == texts
    assert len({len(t) for t in texts}) == 1


def test_parse_time_accepts_z_and_offsets_and_returns_utc() -> None:
    assert parse_time("2026-01-31T12:00:00Z") == T0
    parsed = parse_time("2026-01-31T13:30:00+01:30")
    assert parsed == T0
    assert parsed.tzinfo == UTC


def test_parse_time_round_trips_format_time() -> None:
    moment = datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=UTC)
    assert parse_time(format_time(moment)) == moment


@pytest.mark.parametrize("text", ["2026-01-31T12:00:00", "2026-01-31", "yesterday", ""])
def test_parse_time_refuses_times_without_offset_or_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_time_refuses_times_out_of_range_with_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_time_is_fixed_width_for_years_before_1000() -> None:
    moment = datetime(999, 1, 1, tzinfo=UTC)
    assert format_time(moment) == "0999-01-01T00:00:00.000000Z"
    assert parse_time(format_time(moment)) == moment


# --- results -------------------------------------------------------------------------


def test_content_digest_depends_on_status_and_reason_only() -> None:
    assert content_digest(PASSED, None) == content_digest(PASSED, "")
    assert content_digest(PASSED, None) != content_digest(FAILED, None)
    assert content_digest(FAILED, "a") != content_digest(FAILED, "b")
    assert len(content_digest(FAILED, "sold out")) == 16


def test_content_digest_separates_status_from_reason() -> None:
    # "failed" + "x" must not collide with a status/reason split elsewhere.
    assert content_digest("failed", "x") != content_digest("failedx", None)


def test_digest_ignores_times() -> None:
    early = CheckResult("In Stock", FAILED, T0, "sold out", recorded_at=T0)
    late = CheckResult("In Stock", FAILED, T0 + timedelta(days=1), "sold out")
    assert early.digest == late.digest


def test_revision_orders_by_time_first() -> None:
    older = _result("In Stock", PASSED, minutes=0)
    newer = _result("In Stock", FAILED, minutes=1)
    assert older.revision < newer.revision


def test_revision_breaks_ties_at_the_same_time_by_content() -> None:
    passed = _result("In Stock", PASSED)
    failed = _result("In Stock", FAILED)
    assert passed.revision != failed.revision
    assert passed.revision.split("|")[0] == failed.revision.split("|")[0]
    # Same content at the same time is the same revision: a duplicate.
    assert passed.revision == _result("In Stock", PASSED).revision


def test_revision_ignores_when_the_result_was_recorded() -> None:
    first = CheckResult("In Stock", PASSED, T0, recorded_at=T0)
    again = CheckResult("In Stock", PASSED, T0, recorded_at=T0 + timedelta(hours=1))
    assert first.revision == again.revision


# --- decision ------------------------------------------------------------------------


def test_order_without_results_is_pending_with_every_check_missing() -> None:
    order = _order()
    assert decision(order, REQUIRED) == PENDING
    assert missing_checks(order, REQUIRED) == list(REQUIRED)
    assert failed_checks(order, REQUIRED) == []


def test_order_with_one_check_passed_is_pending() -> None:
    order = _order(_result("Account Check", PASSED))
    assert decision(order, REQUIRED) == PENDING
    assert missing_checks(order, REQUIRED) == ["In Stock"]


def test_order_with_every_check_passed_is_approved() -> None:
    order = _order(_result("Account Check", PASSED), _result("In Stock", PASSED))
    assert decision(order, REQUIRED) == APPROVED
    assert missing_checks(order, REQUIRED) == []


def test_one_failed_check_rejects_even_while_others_are_missing() -> None:
    order = _order(_result("In Stock", FAILED, reason="sold out"))
    assert decision(order, REQUIRED) == REJECTED
    assert failed_checks(order, REQUIRED) == ["In Stock"]


def test_failed_checks_keep_the_order_of_the_required_checks() -> None:
    order = _order(_result("In Stock", FAILED), _result("Account Check", FAILED))
    assert failed_checks(order, REQUIRED) == ["Account Check", "In Stock"]


def test_results_of_checks_that_are_not_required_are_ignored() -> None:
    order = _order(
        _result("Account Check", PASSED),
        _result("In Stock", PASSED),
        _result("Fraud Check", FAILED),
    )
    assert decision(order, REQUIRED) == APPROVED
    assert decision(order, ("Account Check", "In Stock", "Fraud Check")) == REJECTED


def test_order_status_is_the_recorded_outcome_once_there_is_one() -> None:
    outcome = Outcome(INVOICED, T0)
    order = _order(_result("In Stock", FAILED), outcome=outcome)
    assert decision(order, REQUIRED) == REJECTED
    assert order_status(order, REQUIRED) == INVOICED


def test_order_status_without_outcome_is_the_decision() -> None:
    assert order_status(_order(_result("In Stock", PASSED)), REQUIRED) == PENDING


# --- late results --------------------------------------------------------------------


def test_nothing_is_late_before_an_outcome() -> None:
    assert not is_late(_result("In Stock", PASSED, minutes=60), None)


def test_result_recorded_after_the_outcome_is_late() -> None:
    outcome = Outcome(INVOICED, T0)
    result = CheckResult("In Stock", FAILED, T0 - timedelta(hours=1), recorded_at=T0 + _US)
    assert is_late(result, outcome)


def test_result_recorded_at_or_before_the_outcome_is_not_late() -> None:
    outcome = Outcome(INVOICED, T0)
    assert not is_late(CheckResult("In Stock", PASSED, T0, recorded_at=T0), outcome)
    assert not is_late(CheckResult("In Stock", PASSED, T0, recorded_at=T0 - _US), outcome)


def test_without_recorded_time_lateness_falls_back_to_the_occurred_time() -> None:
    outcome = Outcome(REJECTED, T0)
    assert is_late(CheckResult("In Stock", PASSED, T0 + _US), outcome)
    assert not is_late(CheckResult("In Stock", PASSED, T0 - _US), outcome)


# --- timeouts ------------------------------------------------------------------------


def test_pending_order_times_out_exactly_at_its_deadline() -> None:
    order = _order(_result("Account Check", PASSED), deadline=T0)
    assert not timed_out(order, REQUIRED, T0 - _US)
    assert timed_out(order, REQUIRED, T0)
    assert timed_out(order, REQUIRED, T0 + timedelta(days=1))


def test_order_without_deadline_never_times_out() -> None:
    order = _order(_result("Account Check", PASSED))
    assert not timed_out(order, REQUIRED, T0 + timedelta(days=365))


def test_decided_or_final_orders_never_time_out() -> None:
    late = T0 + timedelta(days=1)
    approved = _order(_result("Account Check", PASSED), _result("In Stock", PASSED), deadline=T0)
    rejected = _order(_result("In Stock", FAILED), deadline=T0)
    final = _order(_result("Account Check", PASSED), deadline=T0, outcome=Outcome(TIMED_OUT, T0))
    assert not timed_out(approved, REQUIRED, late)
    assert not timed_out(rejected, REQUIRED, late)
    assert not timed_out(final, REQUIRED, late)


# --- outcomes ------------------------------------------------------------------------


def test_invoice_id_is_stable_per_order_and_differs_between_orders() -> None:
    assert invoice_id("7") == invoice_id("7")
    assert invoice_id("7") != invoice_id("8")
    assert invoice_id("7").startswith("INV-")
    assert len(invoice_id("7")) == len("INV-") + 16


def test_invoice_outcome_carries_the_invoice_id_and_issue_time() -> None:
    outcome = invoice_outcome(_order(), T0)
    assert outcome.kind == INVOICED
    assert outcome.at == T0
    assert outcome.invoice == {"invoiceId": invoice_id("7"), "issuedAt": format_time(T0)}
    assert outcome.problem is None


def test_rejected_problem_names_failed_checks_with_their_reasons() -> None:
    order = _order(
        _result("Account Check", FAILED, reason="credit limit exceeded"),
        _result("In Stock", FAILED),
    )
    outcome = problem_outcome(order, REQUIRED, T0, REJECTED)
    assert outcome.kind == REJECTED
    assert outcome.invoice is None
    assert outcome.problem == {
        "reason": REJECTED,
        "failed": [
            {"check": "Account Check", "reason": "credit limit exceeded"},
            {"check": "In Stock", "reason": ""},
        ],
        "missing": [],
        "recordedAt": format_time(T0),
    }


def test_timed_out_problem_names_the_missing_checks() -> None:
    order = _order(_result("Account Check", PASSED))
    outcome = problem_outcome(order, REQUIRED, T0, TIMED_OUT)
    assert outcome.kind == TIMED_OUT
    assert outcome.problem is not None
    assert outcome.problem["reason"] == TIMED_OUT
    assert outcome.problem["missing"] == ["In Stock"]
    assert outcome.problem["failed"] == []


def test_a_problem_record_carries_at_most_the_reason_limit_of_a_long_reason() -> None:
    # A direct writer may store up to 400 KB; two such reasons would not fit one item.
    order = _order(_result("Account Check", FAILED, reason="r" * 300_000))
    problem = problem_outcome(order, REQUIRED, T0, REJECTED).problem
    assert problem is not None
    assert problem["failed"] == [{"check": "Account Check", "reason": "r" * MAX_REASON_CHARS}]


def test_decision_latency_runs_from_the_last_result_to_the_outcome() -> None:
    from chalicelib.outcomes import decision_latency

    early = _result("Account Check", PASSED)
    late = CheckResult("In Stock", PASSED, T0, recorded_at=T0 + timedelta(seconds=2))
    order = _order(early, late)
    outcome = invoice_outcome(order, T0 + timedelta(seconds=3))
    assert decision_latency(order, outcome) == 1000.0
    assert decision_latency(_order(), outcome) is None
