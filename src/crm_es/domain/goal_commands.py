"""The commands of the customer-management plan's goals (客户管理计划): set, revise, close.

They name no customer: they go to the plan's own stream (:mod:`crm_es.domain.plan`). Part of
the wire format through :data:`crm_es.domain.commands.AnyCommand`, tagged ``set_goal``,
``revise_goal`` and ``close_goal``.
"""

from __future__ import annotations

from datetime import date

from crm_es.domain.command_base import Command
from crm_es.domain.command_fields import Currency, Figure, Id
from crm_es.domain.plan import GoalMetric, GoalScope


class PlanCommand(Command, frozen=True, kw_only=True):
    """A command on the customer-management plan (its own stream, not a customer's)."""

    goal_id: Id


class SetGoal(PlanCommand, frozen=True, kw_only=True, tag="set_goal"):
    metric: GoalMetric
    scope: GoalScope = GoalScope.ALL
    scope_value: Id | None = None  # the segment, owner or region the scope names
    target: Figure  # in the metric's unit: percent, NPS points, CES mean, money
    currency: Currency | None = None  # revenue goals only
    starts_on: date
    ends_on: date
    owner: Id  # the user who answers for the goal


class ReviseGoal(PlanCommand, frozen=True, kw_only=True, tag="revise_goal"):
    """Change what was given; the rest stays."""

    target: Figure | None = None
    ends_on: date | None = None
    owner: Id | None = None


class CloseGoal(PlanCommand, frozen=True, kw_only=True, tag="close_goal"):
    pass
