"""Goals of the demo's customer-management plan (客户管理计划): "raise satisfaction by 10% in
six months" and its like, set by the managers, so the goals report and the HTML report have a
plan to measure against.

Fixed, not drawn: they take nothing from the random streams, so every other draw of the demo
stays as it was. A year-old goal was revised once and closed at the end of its period; three
goals run across the end of the demo period (half of each has passed), each of another metric
and scope.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from crm_es.demo.population import CST
from crm_es.domain import commands as c
from crm_es.domain.plan import GoalMetric, GoalScope

MANAGER = "user:manager-zhou"


def _months(day: date, months: int) -> date:
    """``day`` moved by whole ``months`` (to the 1st of that month: periods start on one)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def plan_commands(start: datetime, stop: datetime) -> list[tuple[datetime, c.Command]]:
    """The plan's commands with their business times, all within ``[start, stop]``."""
    this_month = _months(stop.date(), 0)
    began = _months(this_month, -3)  # six-month goals, half way through at the end

    def at(day: date, hour: int = 10) -> datetime:
        moment = datetime.combine(day, time(hour), tzinfo=CST)
        return min(max(moment, start), stop)

    old_start = _months(this_month, -15)
    old_end = _months(old_start, 6) - timedelta(days=1)
    goals: list[tuple[datetime, c.Command]] = [
        (at(old_start), c.SetGoal(
            goal_id="G-REVENUE-H1", metric=GoalMetric.REVENUE, target="600000.00", currency="CNY",
            starts_on=old_start, ends_on=old_end, owner=MANAGER, actor=MANAGER,
        )),
        (at(_months(old_start, 2)), c.ReviseGoal(
            goal_id="G-REVENUE-H1", target="500000.00", actor=MANAGER,
        )),
        (at(old_end + timedelta(days=1)), c.CloseGoal(goal_id="G-REVENUE-H1", actor=MANAGER)),
        (at(began), c.SetGoal(
            goal_id="G-CSAT", metric=GoalMetric.CSAT, target="76", starts_on=began,
            ends_on=_months(began, 6) - timedelta(days=1), owner=MANAGER, actor=MANAGER,
        )),
        (at(began, 11), c.SetGoal(
            goal_id="G-SLA-EAST", metric=GoalMetric.COMPLAINT_SLA_BREACH_RATE,
            scope=GoalScope.REGION,
            scope_value="华东", target="5", starts_on=began,
            ends_on=_months(began, 6) - timedelta(days=1), owner="user:li", actor=MANAGER,
        )),
        (at(began, 12), c.SetGoal(
            goal_id="G-WIN-LI", metric=GoalMetric.WIN_RATE, scope=GoalScope.OWNER,
            scope_value="staff:li",
            target="45", starts_on=began, ends_on=_months(began, 6) - timedelta(days=1),
            owner="user:li", actor=MANAGER,
        )),
    ]  # fmt: skip
    return [(t, command) for t, command in goals if start <= t <= stop]
