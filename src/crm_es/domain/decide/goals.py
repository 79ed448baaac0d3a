"""Deciders of the customer-management plan's goals: set, revise, close (客户管理计划).

:func:`decide_plan` checks one command against the :class:`~crm_es.domain.plan.Plan` and returns
its events, numbered from the plan's version; a rule that fails raises a
:class:`~crm_es.domain.errors.CrmError` before any event exists, so nothing is stored. The rules:
a goal id is used once; a scope other than ``all`` names its segment, owner or region, and
``all`` names none; the period ends after it starts; the target lies in the metric's range
(percent 0–100, NPS −100–100, CES 1–7, revenue Money in the goal's currency, which only a
revenue goal has and must have); an unknown goal is refused, and a closed one takes no further
step. A revision that changes nothing records nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from crm_es.domain import commands as cmd
from crm_es.domain import goal_events as ge
from crm_es.domain.decide.envelope import Batch, Envelope
from crm_es.domain.errors import CrmError, DuplicateId, InvalidState, InvalidValue, UnknownId
from crm_es.domain.event_base import CustomerEvent
from crm_es.domain.plan import (
    EARLIEST_GOAL_DAY,
    PLAN_ID,
    TARGET_RANGES,
    Goal,
    GoalMetric,
    GoalScope,
    Plan,
    period_problem,
    step_problem,
)
from crm_es.domain.values import Money


def decide_plan(plan: Plan, command: cmd.PlanCommand, envelope: Envelope) -> list[CustomerEvent]:
    """The events ``command`` produces on ``plan``."""
    if command.reason is not None:
        # The plan's stream has no personal-data key to encrypt free text with, and a reason may
        # name a person: refused rather than kept in clear (design §6). The text is not echoed.
        raise InvalidValue(
            "reason", f"{len(command.reason)} characters", "plan commands carry no free-text "
            "reason (the plan's stream holds no personal data): leave it out",
        )  # fmt: skip
    batch = Batch(plan.id, plan.version, envelope)
    if isinstance(command, cmd.SetGoal):
        _set_goal(plan, command, batch)
    elif isinstance(command, cmd.ReviseGoal):
        _revise_goal(plan, command, batch)
    elif isinstance(command, cmd.CloseGoal):
        goal = _open_goal(plan, command.goal_id, "close it")
        _check_step(goal, envelope)
        batch.add(ge.GoalClosed, goal_id=command.goal_id)
    else:  # pragma: no cover - every plan command is above
        msg = f"no decider for {type(command).__name__}"
        raise TypeError(msg)
    return batch.events


def _set_goal(plan: Plan, c: cmd.SetGoal, b: Batch) -> None:
    if c.goal_id in plan.goals:
        raise _in_plan(
            DuplicateId("goal", c.goal_id, PLAN_ID), f"goal {c.goal_id!r} already exists"
        )
    if c.scope is GoalScope.ALL and c.scope_value is not None:
        raise InvalidValue(
            "scope_value",
            c.scope_value,
            "scope 'all' names no segment, owner "
            "or region: leave scope_value out or choose segment, owner or region",
        )
    if c.scope is not GoalScope.ALL and c.scope_value is None:
        raise InvalidValue("scope_value", None, f"scope {c.scope.value!r} needs the "
                           f"{c.scope.value} it is for")  # fmt: skip
    _check_period(c.starts_on, c.ends_on)
    if c.metric is GoalMetric.REVENUE and c.currency is None:
        raise InvalidValue("currency", None, "a revenue goal names the currency of its target")
    if c.metric is not GoalMetric.REVENUE and c.currency is not None:
        raise InvalidValue("currency", c.currency, f"only a revenue goal has a currency, "
                           f"not a {c.metric.value} goal")  # fmt: skip
    target = _checked_target(c.metric, c.target, c.currency)
    b.add(
        ge.GoalSet, goal_id=c.goal_id, metric=c.metric.value, scope=c.scope.value,
        scope_value=c.scope_value, target=target, currency=c.currency, starts_on=c.starts_on,
        ends_on=c.ends_on, owner=c.owner,
    )  # fmt: skip


def _revise_goal(plan: Plan, c: cmd.ReviseGoal, b: Batch) -> None:
    if c.target is None and c.ends_on is None and c.owner is None:
        raise InvalidValue("target", None, "revise_goal changes target, ends_on or owner: "
                           "give at least one")  # fmt: skip
    goal = _open_goal(plan, c.goal_id, "revise it")
    _check_step(goal, b.envelope)
    target = None
    if c.target is not None:
        target = _checked_target(goal.metric, c.target, goal.currency)
        target = None if Decimal(target) == Decimal(goal.target) else target
    ends_on = c.ends_on if c.ends_on != goal.ends_on else None
    if ends_on is not None:
        _check_period(goal.starts_on, ends_on)
    owner = c.owner if c.owner != goal.owner else None
    if target is not None or ends_on is not None or owner is not None:
        b.add(ge.GoalRevised, goal_id=c.goal_id, target=target, ends_on=ends_on, owner=owner)


def _check_period(starts_on: date, ends_on: date) -> None:
    why = period_problem(starts_on, ends_on)
    if why is not None:
        early = starts_on < EARLIEST_GOAL_DAY < ends_on
        field, day = ("starts_on", starts_on) if early else ("ends_on", ends_on)
        raise InvalidValue(field, day.isoformat(), why)


def _check_step(goal: Goal, envelope: Envelope) -> None:
    why = step_problem(goal, envelope.occurred_at)
    if why is not None:
        raise InvalidValue("occurred_at", envelope.occurred_at.isoformat(), why)


def _checked_target(metric: GoalMetric, text: str, currency: str | None) -> str:
    """The target as it is stored: in the metric's range (money: valid for its currency)."""
    if metric is GoalMetric.REVENUE:
        assert currency is not None
        if text.startswith("-"):
            raise InvalidValue("target", text, "a revenue target is not negative")
        Money.parse(text, currency, "target")  # a known currency, no more decimals than it has
        return text
    low, high = TARGET_RANGES[metric]
    value = Decimal(text)
    if value < low or (high is not None and value > high):
        why = f"a {metric.value} target lies between {low} and {high}"
        raise InvalidValue("target", text, why)
    return text


def _open_goal(plan: Plan, goal_id: str, action: str) -> Goal:
    """The goal, which must exist and still be open."""
    goal = plan.goals.get(goal_id)
    if goal is None:
        raise _in_plan(UnknownId("goal", goal_id, PLAN_ID), f"unknown goal {goal_id!r}")
    if not goal.is_open:
        raise InvalidState(
            f"goal {goal_id!r} is already closed; cannot {action} (set a new goal instead)"
        )
    return goal


def _in_plan(error: DuplicateId | UnknownId, what: str) -> CrmError:
    """``error`` saying it is about the plan, not a customer."""
    error.args = (f"{what} in the customer-management plan",)
    return error
