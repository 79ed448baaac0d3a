"""The events of the customer-management plan's goals (客户管理计划), in the plan's own stream.

A goal is set once (what is measured, for which customers, the target, the period and the user
who answers for it), may be revised (target, end of the period, owner) while it is open, and is
closed once. The stream is :data:`crm_es.domain.plan.PLAN_ID`, not a customer's. Registered in
:data:`crm_es.domain.events.EVENT_TYPES`.

Goals hold codes, figures, dates and user ids, never a person's data, and the plan has no key
to erase: so no field is personal data here, not even the envelope's reason (why a manager set
or changed a goal), which stays readable in the plan's history.
"""

from __future__ import annotations

from datetime import date

from crm_es.domain.event_base import CustomerEvent


class GoalSet(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.plan.GoalSet"
    PII_FIELDS = ()

    goal_id: str
    metric: str  # a GoalMetric value
    scope: str  # a GoalScope value
    scope_value: str | None = None  # the segment, owner or region; None for scope "all"
    target: str  # a decimal string in the metric's unit (percent, points, money)
    currency: str | None = None  # revenue goals only
    starts_on: date
    ends_on: date
    owner: str  # the user who answers for the goal


class GoalRevised(CustomerEvent, frozen=True, kw_only=True):
    """Only the fields that changed are set."""

    TOPIC = "crm.plan.GoalRevised"
    PII_FIELDS = ()

    goal_id: str
    target: str | None = None
    ends_on: date | None = None
    owner: str | None = None


class GoalClosed(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.plan.GoalClosed"
    PII_FIELDS = ()

    goal_id: str


GOAL_EVENTS = (GoalSet, GoalRevised, GoalClosed)
