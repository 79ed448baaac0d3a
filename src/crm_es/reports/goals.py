"""The goals report (评估效果): how far each goal of the customer-management plan has come.

The plan is read from its own stream as it stood at the query (set, revised and closed by the
business date D, recorded by the knowledge time T), so a revision recorded later, back-dated or
not, never changes the report for an earlier T. For each goal, with ``today`` the report's day:

- ``value``: the metric over the period's days so far (its first day to today, or to its last
  day once it is over); retention, a stock, as of then. Every metric is measured by
  :mod:`crm_es.reports.goal_metrics` through the definition its own report uses;
- ``baseline``: the metric where the goal started from: over the as many days just before the
  period (retention: as of the day before it starts);
- ``elapsed``: the share of the period's days gone by today (%);
- ``path``: where a straight line from the baseline at the start to the target at the end is
  today: ``baseline + (target − baseline) × elapsed`` (without a baseline, the target itself);
  for revenue, which adds up over the period, ``target × elapsed``;
- ``on_track``: the value is at or better than the path (higher, or lower for the complaint
  SLA breach rate); None while there is nothing to measure, or before the period starts.

Figures are decimal strings in the metric's unit: percent, NPS points, CES mean, money.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Final

import msgspec

from crm_es.domain.event_base import CustomerEvent
from crm_es.domain.plan import LOWER_IS_BETTER, STOCK_METRICS, Goal, GoalMetric, Plan, evolve_plan
from crm_es.domain.times import FIRST_DAY, LAST_DAY
from crm_es.domain.values import Money, format_minor
from crm_es.reports.goal_metrics import Measures, Window, start_of, window
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

CENT: Final = Decimal("0.01")


class GoalProgress(msgspec.Struct, frozen=True, kw_only=True):
    goal_id: str
    metric: str
    scope: str
    scope_value: str | None
    owner: str
    status: str  # open | closed (as of the query)
    starts_on: str
    ends_on: str
    currency: str | None  # revenue goals
    better: str  # higher | lower
    target: str
    baseline: str | None
    value: str | None
    elapsed: str  # % of the period's days gone
    path: str | None
    on_track: bool | None


class GoalsReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    goals: list[GoalProgress]


def plan_as_of(events: Iterable[CustomerEvent], query: ReportQuery) -> Plan:
    """The plan as the query sees it: events recorded by T that occurred by D, in stream order."""
    seen = (e for e in events if e.recorded_at <= query.known_at and e.occurred_at <= query.as_of)
    return evolve_plan(Plan(), seen)


def goals_report(
    tx: Tx, tables: dict[str, str], query: ReportQuery, events: Iterable[CustomerEvent]
) -> GoalsReport:
    """Every goal of the plan as of the query, in goal id order."""
    measures = Measures(tx, tables)
    plan = plan_as_of(events, query)
    return GoalsReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=query.reference_date.isoformat(),
        goals=[_progress(measures, goal, query) for _, goal in sorted(plan.goals.items())],
    )


def _progress(measures: Measures, goal: Goal, query: ReportQuery) -> GoalProgress:
    today = query.reference_date
    days = (goal.ends_on - goal.starts_on).days + 1
    gone = min(max((min(today, goal.ends_on) - goal.starts_on).days + 1, 0), days)
    elapsed = Fraction(gone, days)
    target = Decimal(goal.target)
    baseline = _figure(goal, measures, _baseline_window(goal, days, query))
    value = None
    if gone:
        last = _in_calendar(min(today, goal.ends_on))
        value = _figure(goal, measures, window(_in_calendar(goal.starts_on), last, query))
    path = _path(goal, target, baseline, elapsed) if gone else None
    on_track = None
    if value is not None and path is not None:
        lower = goal.metric in LOWER_IS_BETTER
        on_track = value <= path if lower else value >= path
    return GoalProgress(
        goal_id=goal.goal_id, metric=goal.metric.value, scope=goal.scope.value,
        scope_value=goal.scope_value, owner=goal.owner, status=goal.status,
        starts_on=goal.starts_on.isoformat(), ends_on=goal.ends_on.isoformat(),
        currency=goal.currency, better="lower" if goal.metric in LOWER_IS_BETTER else "higher",
        target=goal.target, baseline=_text(goal, baseline), value=_text(goal, value),
        elapsed=str(_cents(Decimal(elapsed.numerator * 100) / elapsed.denominator)),
        path=_text(goal, path), on_track=on_track,
    )  # fmt: skip


def _in_calendar(day: date) -> date:
    """``day`` moved into the days an event may occur on: a period stored reaching past them
    (0001-01-01, 9999-12-31) is measured over the days it can hold facts on, never raising."""
    return min(max(day, FIRST_DAY), LAST_DAY)


def _baseline_window(goal: Goal, days: int, query: ReportQuery) -> Window:
    """The as many days just before the period (a stock: as of the day before it), cut at the
    day before the first an event may occur on."""
    start = _in_calendar(goal.starts_on)
    back = 1 if goal.metric in STOCK_METRICS else days
    first = date.fromordinal(max(start.toordinal() - back, FIRST_DAY.toordinal() - 1))
    return window(first, start - timedelta(days=1), query)


def _figure(goal: Goal, measures: Measures, at: Window) -> Decimal | None:
    """The metric over ``at`` as a Decimal in the goal's unit (revenue: major units)."""
    if at.query.as_of < start_of(at.first, at.query):
        return None  # the window had not begun by the report's date
    found = measures.measure(goal.metric, goal.scope, goal.scope_value, at, goal.currency)
    if found is None:
        return None
    if goal.metric is GoalMetric.REVENUE:
        assert goal.currency is not None
        return Decimal(format_minor(int(found), goal.currency))
    return Decimal(str(found))


def _path(goal: Goal, target: Decimal, baseline: Decimal | None, elapsed: Fraction) -> Decimal:
    share = Decimal(elapsed.numerator) / Decimal(elapsed.denominator)
    if goal.metric is GoalMetric.REVENUE:
        assert goal.currency is not None
        minor = Money.parse(goal.target, goal.currency).minor * elapsed
        return Decimal(format_minor(round(minor), goal.currency))
    start = target if baseline is None else baseline
    return _cents(start + (target - start) * share)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _text(goal: Goal, figure: Decimal | None) -> str | None:
    if figure is None:
        return None
    if goal.metric is GoalMetric.REVENUE:
        return str(figure)
    return str(_cents(figure))


def table_rows(report: GoalsReport) -> list[dict[str, object]]:
    """One row per goal."""
    return [msgspec.structs.asdict(goal) for goal in report.goals]
