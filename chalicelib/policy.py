"""Completion policy: which checks an order waits for, and how they decide it. Plain Python.

A policy is a list of *groups*. A group of ``n`` checks needs ``k`` of them to pass:

* ``all``: ``k = n`` (every one must pass; one failure rejects);
* ``atLeast``: ``k`` of the listed checks must pass;
* ``any``: ``k = 1``.

A group is *approved* once ``k`` of its checks passed, *rejected* as soon as ``k`` can no
longer be reached (passed + not yet reported < ``k``), *pending* otherwise. An order is
rejected when one group is, approved when every group is, pending otherwise; with
``REQUIRE_DECLARATION`` an order with no declaration is pending whatever its results say.

An order's declaration (``PUT /orders/{id}``) names its checks: by default they are the
order's one ``all`` group, in place of the policy's groups (``"declaredChecks":
"replace"``); with ``"declaredChecks": "add"`` they are an ``all`` group added to them.

Without ``COMPLETION_POLICY`` the policy is one ``all`` group of ``REQUIRED_CHECKS``:
exactly the rule the app had before policies existed.

Example::

    policy = parse_policy({"groups": [{"name": "approvers", "atLeast": 2,
                                       "of": ["A", "B", "C"]}]}, known=("A", "B", "C"))
    policy.evaluate(order).status     # 'pending', 'approved' or 'rejected'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from chalicelib.domain import (
    APPROVED,
    MAX_REASON_CHARS,
    PASSED,
    PENDING,
    REJECTED,
    CheckResult,
    Declaration,
    Order,
    Outcome,
    OutcomeKind,
    format_time,
)

GroupKind = Literal["all", "atLeast", "any"]
ALL: Final = "all"
AT_LEAST: Final = "atLeast"
ANY: Final = "any"
DeclaredMode = Literal["replace", "add"]
REPLACE: Final = "replace"
ADD: Final = "add"
DEFAULT_GROUP = "required"
DECLARED_GROUP = "declared"
_GROUP_KEYS = frozenset({"name", ALL, AT_LEAST, ANY, "of"})
_POLICY_KEYS = frozenset({"groups", "declaredChecks"})


class PolicyError(ValueError):
    """A completion policy document that does not follow the schema."""


@dataclass(frozen=True)
class Group:
    """``needed`` of ``checks`` must pass."""

    name: str
    kind: GroupKind
    checks: tuple[str, ...]
    needed: int

    def evaluate(self, results: Mapping[str, CheckResult]) -> GroupEvaluation:
        passed: list[str] = []
        failed: list[str] = []
        remaining: list[str] = []
        for check in self.checks:
            result = results.get(check)
            if result is None:
                remaining.append(check)
            elif result.status == PASSED:
                passed.append(check)
            else:
                failed.append(check)
        return GroupEvaluation(self, tuple(passed), tuple(failed), tuple(remaining))


@dataclass(frozen=True)
class GroupEvaluation:
    group: Group
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    remaining: tuple[str, ...]

    @property
    def status(self) -> str:
        if len(self.passed) >= self.group.needed:
            return APPROVED
        if len(self.passed) + len(self.remaining) < self.group.needed:
            return REJECTED
        return PENDING

    def counts(self) -> dict[str, int]:
        """What the aggregated event carries per group."""
        return {
            "passed": len(self.passed),
            "failed": len(self.failed),
            "remaining": len(self.remaining),
        }

    def view(self) -> dict[str, Any]:
        """What ``GET /orders/{id}`` shows per group."""
        return {
            "kind": self.group.kind,
            "needed": self.group.needed,
            "checks": list(self.group.checks),
            "status": self.status,
            "passed": list(self.passed),
            "failed": list(self.failed),
            "remaining": list(self.remaining),
        }


@dataclass(frozen=True)
class Evaluation:
    """The policy applied to one order's results."""

    groups: tuple[GroupEvaluation, ...]
    awaiting_declaration: bool = False

    @property
    def status(self) -> str:
        """``pending``, ``approved`` or ``rejected``: what the results alone say."""
        if self.awaiting_declaration:
            return PENDING
        statuses = [group.status for group in self.groups]
        if REJECTED in statuses:
            return REJECTED
        if all(status == APPROVED for status in statuses):
            return APPROVED
        return PENDING

    @property
    def expected(self) -> list[str]:
        """Every check some group of this order waits for, in the groups' order."""
        return list(dict.fromkeys(c for g in self.groups for c in g.group.checks))

    @property
    def failed(self) -> list[str]:
        return list(dict.fromkeys(c for g in self.groups for c in g.failed))

    @property
    def missing(self) -> list[str]:
        """The checks not reported yet of every group not yet approved."""
        return list(
            dict.fromkeys(c for g in self.groups if g.status != APPROVED for c in g.remaining)
        )

    def counts(self) -> dict[str, dict[str, int]]:
        return {g.group.name: g.counts() for g in self.groups}

    def missing_per_group(self) -> dict[str, dict[str, Any]]:
        """What a timed-out order's problem record names, per group not approved."""
        return {
            g.group.name: {
                "needed": g.group.needed,
                "passed": list(g.passed),
                "missing": list(g.remaining),
            }
            for g in self.groups
            if g.status != APPROVED
        }


def all_group(name: str, checks: tuple[str, ...]) -> Group:
    return Group(name, ALL, checks, len(checks))


@dataclass(frozen=True)
class CompletionPolicy:
    """The groups an order without a declaration waits for, and how declarations apply."""

    groups: tuple[Group, ...]
    declared_checks: DeclaredMode = REPLACE
    require_declaration: bool = False

    @classmethod
    def default(
        cls, required: tuple[str, ...], require_declaration: bool = False
    ) -> CompletionPolicy:
        return cls((all_group(DEFAULT_GROUP, required),), REPLACE, require_declaration)

    def groups_for(self, declaration: Declaration | None) -> tuple[Group, ...]:
        if declaration is None:
            return self.groups
        declared = all_group(DECLARED_GROUP, declaration.checks)
        return (declared,) if self.declared_checks == REPLACE else (*self.groups, declared)

    def evaluate(self, order: Order) -> Evaluation:
        groups = self.groups_for(order.declaration)
        return Evaluation(
            tuple(group.evaluate(order.results) for group in groups),
            awaiting_declaration=self.require_declaration and order.declaration is None,
        )

    @property
    def checks(self) -> tuple[str, ...]:
        """Every check named by a group of the policy."""
        return tuple(dict.fromkeys(c for g in self.groups for c in g.checks))


def deadline_of(order: Order) -> datetime | None:
    """The order's deadline: its declaration's, else the one the aggregator opened it with."""
    if order.declaration is not None and order.declaration.deadline is not None:
        return order.declaration.deadline
    return order.deadline


def timed_out(order: Order, policy: CompletionPolicy, now: datetime) -> bool:
    """Not decided, still pending by the policy, and past its deadline."""
    deadline = deadline_of(order)
    return (
        order.outcome is None
        and deadline is not None
        and now >= deadline
        and policy.evaluate(order).status == PENDING
    )


def problem_outcome(
    order: Order, policy: CompletionPolicy, now: datetime, kind: OutcomeKind
) -> Outcome:
    """A problem record naming the failed checks (with reasons), the missing ones, and
    per group not approved what it needed, what passed and what was missing."""
    evaluation = policy.evaluate(order)
    problem: dict[str, Any] = {
        "reason": kind,
        "failed": [
            {"check": c, "reason": (order.results[c].reason or "")[:MAX_REASON_CHARS]}
            for c in evaluation.failed
        ],
        "missing": evaluation.missing,
        "groups": evaluation.missing_per_group(),
        "recordedAt": format_time(now),
    }
    if evaluation.awaiting_declaration:
        problem["declarationMissing"] = True
    return Outcome(kind, now, problem=problem)


# --- the COMPLETION_POLICY document ------------------------------------------------


def _check_list(value: Any, where: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise PolicyError(f"{where} must be a non-empty list of check names")
    if len(set(value)) != len(value):
        raise PolicyError(f"{where} names a check twice")
    unknown = [c for c in value if c not in known]
    if unknown:
        raise PolicyError(
            f"{where} names {unknown[0]!r}, which is in neither REQUIRED_CHECKS nor "
            f"OPTIONAL_CHECKS ({list(known)})"
        )
    return tuple(value)


def _group(raw: Any, index: int, known: tuple[str, ...]) -> Group:
    where = f"groups[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    extra = sorted(set(raw) - _GROUP_KEYS)
    if extra:
        raise PolicyError(f"{where} has an unknown key {extra[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise PolicyError(f"{where}.name must be a name of 1 to 64 characters")
    kinds = [k for k in (ALL, AT_LEAST, ANY) if k in raw]
    if len(kinds) != 1:
        raise PolicyError(f"{where} ({name!r}) must have exactly one of 'all', 'atLeast', 'any'")
    kind = kinds[0]
    if kind != AT_LEAST and "of" in raw:
        raise PolicyError(f"{where} ({name!r}): 'of' goes with 'atLeast' only")
    if kind == ALL:
        return all_group(name, _check_list(raw[ALL], f"{where}.all", known))
    if kind == ANY:
        return Group(name, ANY, _check_list(raw[ANY], f"{where}.any", known), 1)
    checks = _check_list(raw.get("of"), f"{where}.of", known)
    needed = raw[AT_LEAST]
    if isinstance(needed, bool) or not isinstance(needed, int) or not 1 <= needed <= len(checks):
        raise PolicyError(
            f"{where}.atLeast must be a whole number from 1 to {len(checks)} (the checks in 'of')"
        )
    return Group(name, AT_LEAST, checks, needed)


def parse_policy(
    document: Any,
    known: tuple[str, ...],
    required: tuple[str, ...],
    require_declaration: bool = False,
) -> CompletionPolicy:
    """Validate a ``COMPLETION_POLICY`` document; raise :class:`PolicyError` naming the fault."""
    if not isinstance(document, dict):
        raise PolicyError("the document must be a JSON object")
    extra = sorted(set(document) - _POLICY_KEYS)
    if extra:
        raise PolicyError(f"unknown key {extra[0]!r}; expected {sorted(_POLICY_KEYS)}")
    raw_groups = document.get("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise PolicyError("'groups' must be a non-empty list of groups")
    groups = tuple(_group(raw, i, known) for i, raw in enumerate(raw_groups))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise PolicyError("two groups have the same name")
    mode = document.get("declaredChecks", REPLACE)
    if mode not in (REPLACE, ADD):
        raise PolicyError(f"'declaredChecks' must be {REPLACE!r} or {ADD!r}, got {mode!r}")
    if mode == ADD and DECLARED_GROUP in names:
        raise PolicyError(f"group name {DECLARED_GROUP!r} is kept for a declaration's checks")
    named = {c for g in groups for c in g.checks}
    unused = [c for c in required if c not in named]
    if unused:
        raise PolicyError(
            f"REQUIRED_CHECKS names {unused[0]!r} but no group waits for it; "
            "move it to OPTIONAL_CHECKS or add it to a group"
        )
    declared_mode: DeclaredMode = REPLACE if mode == REPLACE else ADD
    return CompletionPolicy(groups, declared_mode, require_declaration)
