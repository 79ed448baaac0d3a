"""Could the service have written this plan history? The rules of
:mod:`crm_es.domain.decide.goals`, checked on plan events that come from outside (an audit
import), as :mod:`crm_es.domain.history_rules` checks a customer's: each event is judged against
the plan its predecessors left, and a history that fails is refused, naming the event.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from crm_es.domain import goal_events as ge
from crm_es.domain.decide.envelope import EARLIEST_BUSINESS_TIME, FUTURE_SKEW
from crm_es.domain.event_base import CustomerEvent
from crm_es.domain.plan import (
    TARGET_RANGES,
    GoalMetric,
    GoalScope,
    Plan,
    period_problem,
    step_problem,
)


def plan_event_problem(plan: Plan, event: CustomerEvent) -> str | None:
    """Why the service could not have recorded ``event`` after ``plan``, or None."""
    if not isinstance(event, ge.GOAL_EVENTS):
        return f"{type(event).__name__} in the plan's stream"
    if event.originator_version != plan.version + 1:
        return f"version {event.originator_version} after version {plan.version}"
    if not event.actor or not event.actor.strip():
        return "no actor"
    if event.occurred_at < EARLIEST_BUSINESS_TIME:
        return "business time before 1900"
    if event.occurred_at > event.recorded_at + FUTURE_SKEW:
        return "business time after the time it was recorded"
    goal = plan.goals.get(event.goal_id)
    if isinstance(event, ge.GoalSet):
        return f"goal {event.goal_id!r} set twice" if goal else _set_problem(event)
    if goal is None:
        return f"a step of unknown goal {event.goal_id!r}"
    if not goal.is_open:
        return f"a step of goal {event.goal_id!r} after it was closed"
    step = step_problem(goal, event.occurred_at)
    if step is not None:
        return step
    if isinstance(event, ge.GoalRevised):
        if event.ends_on is not None:
            period = period_problem(goal.starts_on, event.ends_on)
            if period is not None:
                return f"goal {event.goal_id!r} revised: {period}"
        if event.target is not None:
            return _target_problem(goal.metric, event.target)
    return None


def _set_problem(e: ge.GoalSet) -> str | None:
    if (
        e.metric not in GoalMetric.__members__.values()
        or e.scope not in GoalScope.__members__.values()
    ):
        return f"goal {e.goal_id!r} with unknown metric {e.metric!r} or scope {e.scope!r}"
    if (e.scope == GoalScope.ALL) != (e.scope_value is None):
        return f"goal {e.goal_id!r}: scope {e.scope!r} with scope value {e.scope_value!r}"
    period = period_problem(e.starts_on, e.ends_on)
    if period is not None:
        return f"goal {e.goal_id!r}: {period}"
    if (e.metric == GoalMetric.REVENUE) != (e.currency is not None):
        return f"goal {e.goal_id!r}: a currency only and always on a revenue goal"
    return _target_problem(GoalMetric(e.metric), e.target)


def _target_problem(metric: GoalMetric, target: str) -> str | None:
    try:
        value = Decimal(target)
    except InvalidOperation:
        return f"target {target!r} is not a decimal number"
    low, high = TARGET_RANGES[metric]
    if not value.is_finite() or value < low or (high is not None and value > high):
        return f"a {metric.value} target of {target} is out of range"
    return None
