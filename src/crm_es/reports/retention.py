"""The retention report: cohorts by month of first purchase × months since, and the churn rule's
statuses at the end of every month.

Cohorts and periods (the maths is :mod:`crm_es.analytics.cohorts`): a customer's cohort is the
calendar month, in the store's time zone, of their first purchase day as of the query; period p
is the p-th month after it (0 = the cohort's own month). Per cohort and period:

- ``retained``: customers of the cohort with a purchase day in that month (all of them at p = 0);
  ``retention_rate`` = retained / the cohort's customers × 100;
- ``repeat_customers``: customers of the cohort with a second distinct purchase day on or before
  the last day of that month (same-day orders merge, as in the RFM frequency, so a second order
  on the first day is not a repeat); ``repeat_rate`` = repeat customers / the cohort's customers
  × 100 — the share that had bought again by then, which never falls;
- ``active`` / ``at_risk`` / ``churned``: the churn rule's status of the cohort's customers at
  the end of that month (they add up to the cohort's customers).

Per month (``months``): the statuses at the end of the month of every customer counted who
existed by then (``prospect``: no purchase yet). A month's end is the end of its last day in the
store's time zone; the report date's month, not over yet, is taken at the report's own ``as_of``
(``partial``), so its figures are the churn report's. Statuses are those of
:func:`~crm_es.reports.facts.population.load_population` — the one rule
(:mod:`crm_es.analytics.churn_rule`) the segments, churn and KPI reports use — as of each month
end, known at the report's ``known_at``: facts recorded later, or occurring after the report's
``as_of``, are invisible to every month, so a report for (D, T) is the same forever.

Filters (``owner``, ``segment``, ``region``) choose the customers counted, by their values as of
the report's (D, T): the owner (``(unassigned)`` for none), the region (``(none)`` for none), and
a segment in the vocabulary of the segments report (R×F segment, Chinese class, lifecycle stage,
tier, churn status or RFM code).

Cost: the population once as of the report, then one read of when each customer came to exist
and of the explicit churn facts; every earlier month's statuses follow from those and the
report's purchase days (:mod:`crm_es.analytics.month_end_statuses`: a month end's days are a
prefix of the report's, and only the customers who bought in a month change their median gap),
so the months add one pass over the customers each, not a load.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Final

import msgspec
import numpy as np

from crm_es.analytics.churn_rule import (
    STATUS_NAMES,
    BoolArray,
    ChurnRule,
    IntArray,
)
from crm_es.analytics.cohorts import (
    CohortGrid,
    cohort_grid,
    cohort_status_counts,
    month_numbers,
    month_text,
)
from crm_es.analytics.month_end_statuses import month_end_statuses
from crm_es.analytics.rfm import CN8_CELLS, RF_GRID_CELLS, RFM_CODES
from crm_es.analytics.satisfaction import rate
from crm_es.domain.errors import InvalidValue
from crm_es.domain.times import day_number, iso, moment
from crm_es.domain.values import TIER_CURRENCY, Tier
from crm_es.reports.facts.customers import UNASSIGNED
from crm_es.reports.facts.month_end_facts import churn_facts_by_end, existing_from
from crm_es.reports.facts.population import LIFECYCLE_STAGES, Population, load_population
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

NO_REGION: Final = "(none)"
_ACTIVE, _AT_RISK, _CHURNED = (STATUS_NAMES.index(s) for s in ("active", "at_risk", "churned"))


class CohortPeriod(msgspec.Struct, frozen=True, kw_only=True):
    period: int  # months since the cohort's month
    month: str  # YYYY-MM: the cohort's month + period
    partial: bool  # the report date's month, counted up to that date
    retained: int
    retention_rate: float | None  # % of the cohort's customers
    repeat_customers: int
    repeat_rate: float | None  # % of the cohort's customers
    active: int  # statuses at the end of the month
    at_risk: int
    churned: int


# The figures of a cell (a grid can show any one of them).
_MEASURES: Final = tuple(
    f for f in CohortPeriod.__struct_fields__ if f not in ("period", "month", "partial")
)


class Cohort(msgspec.Struct, frozen=True, kw_only=True):
    cohort: str  # YYYY-MM of the first purchase day
    customers: int
    periods: list[CohortPeriod]  # period 0 first, up to the report date's month


class MonthStatus(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM
    status_on: str  # the day the statuses are of: the month's last day, or the report date
    partial: bool
    customers: int  # counted customers that existed by then
    prospect: int
    active: int
    at_risk: int
    churned: int


# The months a report covers by default, and at most (a century of monthly statuses).
WINDOW_MONTHS: Final = 120
MAX_WINDOW_MONTHS: Final = 1200


class RetentionReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    rule: ChurnRule
    owner: str | None  # the filters asked for (None: every customer)
    segment: str | None
    region: str | None
    customers: int  # customers counted (present as of the report and matching the filters)
    buyers: int  # of them, with a purchase day: the customers of the cohorts
    window_months: int  # the months the report covers, up to the report date's
    before_window: int  # counted buyers whose first purchase is before them: in no cohort
    cohorts: list[Cohort]  # oldest first; months without a first purchase have none
    months: list[MonthStatus]  # from the first cohort's month to the report date's


def _segment_labels(pop: Population) -> list[tuple[tuple[str, ...], IntArray, IntArray | None]]:
    """(names, index into names, at) of each vocabulary ``--segment`` takes; ``at``: the
    customers the index is of (None: every customer)."""
    scores, buyers = pop.scores, pop.buyers
    tiers = tuple(t.value for t in Tier)
    tier_index = np.array([tiers.index(t) for t in pop.customers.tiers], dtype=np.int64)
    return [
        (RF_GRID_CELLS, scores.grid_index(), buyers),
        (CN8_CELLS, scores.cn_index(), buyers),
        (RFM_CODES, scores.code_index(), buyers),
        (LIFECYCLE_STAGES, pop.stages, None),
        (tiers, tier_index, None),
        (STATUS_NAMES, pop.statuses, None),
    ]


def _in_segment(pop: Population, segment: str) -> BoolArray:
    mask = np.zeros(len(pop.customers.ids), dtype=bool)
    known = False
    for names, index, at in _segment_labels(pop):
        hits = [i for i, name in enumerate(names) if name == segment]
        if not hits:
            continue
        known = True
        matched = np.isin(index, hits)
        if at is None:
            mask |= matched
        else:
            mask[at[matched]] = True
    if not known:
        raise InvalidValue(
            "segment", segment, "not a segment, class, lifecycle stage, tier, churn status or "
            "RFM code (e.g. Champions, 重要价值客户, repeat, gold, at_risk, 545)"
        )  # fmt: skip
    return mask


def selected_customers(
    pop: Population, owner: str | None, segment: str | None, region: str | None
) -> BoolArray:
    """Which customers of ``pop`` the filters keep, by their values in ``pop``."""
    customers = pop.customers
    keep = np.ones(len(customers.ids), dtype=bool)
    if owner is not None:
        keep &= np.array([(o or UNASSIGNED) == owner for o in customers.owners], dtype=bool)
    if region is not None:
        keep &= np.array([(r or NO_REGION) == region for r in customers.regions], dtype=bool)
    if segment is not None:
        keep &= _in_segment(pop, segment)
    return keep


def _month_end(month: int) -> str:
    """The last day (ISO) of a month number."""
    following = np.datetime64(month_text(month + 1) + "-01") - np.timedelta64(1, "D")
    return str(following)


def statuses_by_month(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    rule: ChurnRule,
    pop: Population,
    first_month: int,
    last_month: int,
) -> Iterator[tuple[IntArray, BoolArray, str]]:
    """For each month, first to last: (status code of each customer of ``pop``, which of them
    existed by the month's end, the day the statuses are of). The last month is the report's
    own ``pop``; each earlier one is what a load as of its end known at the report's
    ``known_at`` gives (:func:`~crm_es.reports.facts.population.load_population`; the tests
    hold the two equal customer by customer). Those loads are not made: the days of ``pop`` cut
    at each end are that load's days (a row's day is its business time's day in the store's
    zone, so it occurred by the end of a day exactly when its day is on or before it), and
    presence and churn facts are read once, with the first month end each occurred by."""
    ids, facts = pop.customers.ids, pop.facts
    days = [_month_end(month) for month in range(first_month, last_month)]
    if days:
        ends = [iso(_end_of(day, query)) for day in days]
        existing = existing_from(tx, tables, query, ids, ends)
        churns = churn_facts_by_end(tx, tables, query, ids, ends)
        end_days = np.array([day_number(date.fromisoformat(day)) for day in days])
        statuses = month_end_statuses(
            facts.day_owner, facts.day_of, len(ids), end_days, rule, churns
        )
        for j, codes in enumerate(statuses):
            yield codes, existing <= j, days[j]
    yield pop.statuses, np.ones(len(ids), dtype=bool), query.reference_date.isoformat()


def _end_of(day: str, query: ReportQuery) -> datetime:
    """The last instant of ``day`` in the store's zone: what ``--as-of day`` means."""
    end = moment("as_of", day, tz=query.tz)
    assert end is not None
    return end


def retention_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    rule: ChurnRule | None = None,
    owner: str | None = None,
    segment: str | None = None,
    region: str | None = None,
    window_months: int = WINDOW_MONTHS,
) -> RetentionReport:
    rule = rule or ChurnRule()
    check_window(window_months)
    pop = load_population(tx, tables, query, TIER_CURRENCY, rule)
    keep = selected_customers(pop, owner, segment, region)
    today = query.reference_date
    last_month = int(month_numbers(np.array([day_number(today)]))[0])
    facts = pop.facts
    # Cohorts begin in the window: a report dated centuries after the purchases has none,
    # rather than a grid of a million empty months.
    buyers = facts.purchase_days > 0
    first_months = np.full(buyers.size, last_month + 1, dtype=np.int64)
    first_months[buyers] = month_numbers(facts.first_day[buyers])
    early = buyers & (first_months <= last_month - window_months)
    cohort_keep = keep & ~early
    day_owner, day_of = facts.day_owner, facts.day_of
    if not cohort_keep.all():  # ten million days: copied only when some customers drop out
        kept_days = cohort_keep[day_owner]
        day_owner, day_of = day_owner[kept_days], day_of[kept_days]
    grid = cohort_grid(day_owner, day_of, len(pop.customers.ids), last_month)
    cohorts: list[Cohort] = []
    months: list[MonthStatus] = []
    if grid.cohorts.size:
        first_month = int(grid.cohorts[0])
        by_month = statuses_by_month(tx, tables, query, rule, pop, first_month, last_month)
        status_cells = np.zeros((grid.cohorts.size, grid.periods, len(STATUS_NAMES)), np.int64)
        in_cohort = grid.cohort_of >= 0
        cohort_month = np.where(in_cohort, grid.cohorts[grid.cohort_of], last_month + 1)
        for j, (codes, present, day) in enumerate(by_month):
            month = first_month + j
            counted = keep & present
            # Only customers whose cohort has begun by this month have a status in its column.
            cohort_of = np.where(counted & (cohort_month <= month), grid.cohort_of, -1)
            counts = cohort_status_counts(cohort_of, codes, grid.cohorts.size, len(STATUS_NAMES))
            rows = np.flatnonzero(grid.cohorts <= month)
            status_cells[rows, month - grid.cohorts[rows]] = counts[rows]
            totals = np.bincount(codes[counted], minlength=len(STATUS_NAMES)).tolist()
            months.append(
                MonthStatus(
                    month=month_text(month), status_on=day, partial=_partial(month, day),
                    customers=int(counted.sum()), prospect=totals[STATUS_NAMES.index("prospect")],
                    active=totals[_ACTIVE], at_risk=totals[_AT_RISK], churned=totals[_CHURNED],
                )
            )  # fmt: skip
        cohorts = _cohorts(grid, status_cells, last_month, months[-1].partial)
    return RetentionReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=today.isoformat(),
        rule=rule,
        owner=owner,
        segment=segment,
        region=region,
        customers=int(keep.sum()),
        buyers=int((keep & buyers).sum()),
        window_months=window_months,
        before_window=int((keep & early).sum()),
        cohorts=cohorts,
        months=months,
    )


def check_window(window_months: int) -> None:
    if (
        isinstance(window_months, bool)
        or not isinstance(window_months, int)
        or not (1 <= window_months <= MAX_WINDOW_MONTHS)
    ):
        raise InvalidValue(
            "window_months", str(window_months), f"a whole number from 1 to {MAX_WINDOW_MONTHS}"
        )


def _partial(month: int, day: str) -> bool:
    return day < _month_end(month)


def _cohorts(
    grid: CohortGrid, status_cells: IntArray, last_month: int, partial: bool
) -> list[Cohort]:
    """The grid as Structs; ``partial``: the last month is the report date's, not over."""
    out = []
    sizes = grid.customers.tolist()
    for r, (month, size) in enumerate(zip(grid.cohorts.tolist(), sizes, strict=True)):
        periods = []
        for p in range(last_month - month + 1):
            retained, repeat = int(grid.retained[r, p]), int(grid.repeat[r, p])
            status = status_cells[r, p].tolist()
            periods.append(
                CohortPeriod(
                    period=p, month=month_text(month + p),
                    partial=partial and month + p == last_month,
                    retained=retained, retention_rate=rate(retained, size),
                    repeat_customers=repeat, repeat_rate=rate(repeat, size),
                    active=status[_ACTIVE], at_risk=status[_AT_RISK], churned=status[_CHURNED],
                )
            )  # fmt: skip
        out.append(Cohort(cohort=month_text(month), customers=size, periods=periods))
    return out


def table_rows(report: RetentionReport) -> list[dict[str, object]]:
    """One row per cohort and period (CSV): the cohort's figures beside the period's."""
    return [
        {"cohort": c.cohort, "customers": c.customers, **msgspec.structs.asdict(p)}
        for c in report.cohorts
        for p in c.periods
    ]


def grid_rows(report: RetentionReport, measure: str = "retention_rate") -> list[dict[str, object]]:
    """The cohort × period grid of one measure, for a table: a row per cohort, a column per
    period (``m0`` = the cohort's month)."""
    if measure not in _MEASURES:
        raise InvalidValue("measure", measure, f"one of {', '.join(_MEASURES)}")
    width = max((len(c.periods) for c in report.cohorts), default=0)
    rows: list[dict[str, object]] = []
    for c in report.cohorts:
        row: dict[str, object] = {"cohort": c.cohort, "customers": c.customers}
        values = [getattr(p, measure) for p in c.periods]
        row.update({f"m{p}": values[p] if p < len(values) else None for p in range(width)})
        rows.append(row)
    return rows


def month_rows(report: RetentionReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(m) for m in report.months]
