"""The customer-management plan (客户管理计划): its goals, the stream they live in, and what
each metric means for a target.

The plan is one stream of its own, :data:`PLAN_ID` (derived like customer ids, from a namespace
no customer ref maps into), so goals are chained, verified, exported and imported like any
stream, and never mixed into a customer's. :class:`Plan` is its state, evolved only by the
events of :mod:`crm_es.domain.goal_events`; the rules are checked before those exist, in
:mod:`crm_es.domain.decide.goals`. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Final
from uuid import UUID, uuid5

import msgspec

from crm_es.domain import goal_events as ge
from crm_es.domain.event_base import CustomerEvent

# Fixed forever: the plan's stream id derives from it. A namespace of its own, so no customer's
# external ref can ever name the plan's stream.
PLAN_NAMESPACE: Final = UUID("0b7e6d2a-51c3-4f8e-9a1d-6c2e8f4b3a70")
PLAN_ID: Final = uuid5(PLAN_NAMESPACE, "customer-management-plan")


class GoalMetric(enum.StrEnum):
    CSAT = "csat"  # % satisfied answers, as the satisfaction report
    NPS = "nps"  # −100..+100
    CES = "ces"  # mean on 1–7, higher = easier
    REVENUE = "revenue"  # net spend in the period, in the goal's currency
    RETENTION = "retention"  # % of buyers the churn rule does not count as churned
    COMPLAINT_SLA_BREACH_RATE = "complaint_sla_breach_rate"  # % of complaints filed
    WIN_RATE = "win_rate"  # % of closed opportunities won, as the pipeline report
    CARE_TASKS_ON_TIME = "care_tasks_on_time"  # % of completed care tasks done by their due day


class GoalScope(enum.StrEnum):
    ALL = "all"
    SEGMENT = "segment"  # an R×F segment (Champions, At Risk …)
    OWNER = "owner"  # the customers a staff member owns
    REGION = "region"


# The range a target may take, in the metric's unit (None: no upper bound).
TARGET_RANGES: Final[dict[GoalMetric, tuple[Decimal, Decimal | None]]] = {
    GoalMetric.CSAT: (Decimal(0), Decimal(100)),
    GoalMetric.NPS: (Decimal(-100), Decimal(100)),
    GoalMetric.CES: (Decimal(1), Decimal(7)),
    GoalMetric.REVENUE: (Decimal(0), None),
    GoalMetric.RETENTION: (Decimal(0), Decimal(100)),
    GoalMetric.COMPLAINT_SLA_BREACH_RATE: (Decimal(0), Decimal(100)),
    GoalMetric.WIN_RATE: (Decimal(0), Decimal(100)),
    GoalMetric.CARE_TASKS_ON_TIME: (Decimal(0), Decimal(100)),
}
LOWER_IS_BETTER: Final = frozenset({GoalMetric.COMPLAINT_SLA_BREACH_RATE})
"""Metrics a goal brings down; every other one it raises."""
STOCK_METRICS: Final = frozenset({GoalMetric.RETENTION})
"""Measured at a moment (as of a date); every other metric over the days of a window."""

OPEN: Final = "open"
CLOSED: Final = "closed"


class Goal(msgspec.Struct, kw_only=True, gc=False):
    goal_id: str
    metric: GoalMetric
    scope: GoalScope
    scope_value: str | None
    target: str
    currency: str | None
    starts_on: date
    ends_on: date
    owner: str
    set_at: datetime  # business time of the GoalSet
    changed_at: datetime | None = None  # business time of its latest step (None: the set)
    status: str = OPEN
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


class Plan(msgspec.Struct, kw_only=True, gc=False):
    """The plan's goals by id, open or closed, and the stream's version."""

    id: UUID = PLAN_ID
    version: int = 0
    goals: dict[str, Goal] = {}


# A goal's period: within these days, and no longer than ten years (its baseline is the as many
# days before it, which must stay a real date too).
EARLIEST_GOAL_DAY: Final = date(1970, 1, 1)
LATEST_GOAL_DAY: Final = date(2999, 12, 31)
LONGEST_GOAL_DAYS: Final = 3653


def period_problem(starts_on: date, ends_on: date) -> str | None:
    """Why a goal cannot run from ``starts_on`` to ``ends_on``, or None."""
    if ends_on <= starts_on:
        return f"the period must end after it starts ({starts_on.isoformat()})"
    if starts_on < EARLIEST_GOAL_DAY or ends_on > LATEST_GOAL_DAY:
        return (
            f"a goal's period lies between {EARLIEST_GOAL_DAY.isoformat()} and "
            f"{LATEST_GOAL_DAY.isoformat()}"
        )
    if (ends_on - starts_on).days > LONGEST_GOAL_DAYS:
        return f"a goal's period lasts at most {LONGEST_GOAL_DAYS} days (ten years)"
    return None


def step_problem(goal: Goal, occurred_at: datetime) -> str | None:
    """Why a revision or closing of ``goal`` cannot be dated ``occurred_at``, or None: a goal's
    steps follow one another in business time, as a customer's do (design §4), so the plan as
    of any date is the one its steps up to that date make."""
    latest = goal.changed_at or goal.set_at
    if occurred_at < latest:
        return (
            f"goal {goal.goal_id!r} was set or last revised at {latest.isoformat()}; "
            "a step cannot be dated before it"
        )
    return None


def evolve_plan(plan: Plan, events: Iterable[CustomerEvent]) -> Plan:
    """``plan`` after ``events`` in stream order (changed in place)."""
    for event in events:
        _apply(plan, event)
        plan.version = event.originator_version
    return plan


def _apply(plan: Plan, event: CustomerEvent) -> None:
    if isinstance(event, ge.GoalSet):
        plan.goals[event.goal_id] = Goal(
            goal_id=event.goal_id, metric=GoalMetric(event.metric), scope=GoalScope(event.scope),
            scope_value=event.scope_value, target=event.target, currency=event.currency,
            starts_on=event.starts_on, ends_on=event.ends_on, owner=event.owner,
            set_at=event.occurred_at,
        )  # fmt: skip
        return
    if isinstance(event, ge.GoalRevised | ge.GoalClosed) and event.goal_id not in plan.goals:
        # A step seen without its goal: a history stored before a step was refused a date
        # before its goal's, read as of a date between the two. The goal is not there yet.
        return
    if isinstance(event, ge.GoalRevised):
        goal = plan.goals[event.goal_id]
        goal.changed_at = event.occurred_at
        goal.target = event.target if event.target is not None else goal.target
        goal.ends_on = event.ends_on if event.ends_on is not None else goal.ends_on
        goal.owner = event.owner if event.owner is not None else goal.owner
    elif isinstance(event, ge.GoalClosed):
        goal = plan.goals[event.goal_id]
        goal.status, goal.closed_at = CLOSED, event.occurred_at
    else:
        msg = f"{type(event).__name__} is not an event of the plan"
        raise ValueError(msg)
