"""The category funnel (issue 18, item 5): how many customers stand at each of the seeds' stages
潜在 → 意向 → 准 → 签约 (potential → intended → prospective → signed) and how many of each
moved on, month by month.

A customer's category as of an instant is the one of its latest ``category`` fact (by business
time, then stream version) that occurred by then — the rule of
:func:`~crm_es.reports.facts.customers.attributes_as_of`. Every customer gets one at its
registration, so the customers counted are those registered by then. Partners (合作伙伴) and
internal accounts (内部客户) stand outside the funnel and are counted apart (``outside``).

Per month (the last ``months`` calendar months in the store's time zone, the report date's month
last, as the retention report cuts them): the customers in each stage at the month's start (facts
that occurred before its first instant) and, of them, those in a later funnel stage at its end
(the end of its last day; the report date's month, not over yet, at the report's ``as_of``:
``partial``). ``conversion_rate`` = converted / at the start × 100 (None when nobody was there);
signed, the last stage, has no later one and no rate. A customer who skips stages (potential →
signed) converts from the stage it stood at; one who becomes a partner does not convert.

Every figure is as of (``as_of``, ``known_at``): facts that occurred after ``as_of`` or were
recorded after ``known_at`` are invisible to every month, so the report for (D, T) never changes.
The category facts are read once; each month is a pass over them in memory, not a query.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final

import msgspec
import numpy as np

from crm_es.analytics.satisfaction import rate
from crm_es.domain.errors import InvalidValue
from crm_es.domain.times import iso
from crm_es.domain.values import CATEGORY_LABELS, FUNNEL_CATEGORIES, Category
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# The months a report covers by default, and at most (ten years of monthly funnels).
DEFAULT_MONTHS: Final = 12
MAX_MONTHS: Final = 120

# Every category by code: the funnel's stages in order first, so "a later stage" is a larger
# code below FUNNEL_SIZE; the categories outside the funnel after them.
_CODES: Final = (*FUNNEL_CATEGORIES, *(c for c in Category if c not in FUNNEL_CATEGORIES))
_CODE_OF: Final = {c.value: i for i, c in enumerate(_CODES)}
FUNNEL_SIZE: Final = len(FUNNEL_CATEGORIES)
_NONE: Final = -1  # no category by then: not yet registered


class StageCount(msgspec.Struct, frozen=True, kw_only=True):
    stage: str  # the category's value, as stored
    label: str  # the seeds' name: 潜在客户 …
    customers: int


class MonthStage(msgspec.Struct, frozen=True, kw_only=True):
    stage: str
    label: str
    at_start: int  # customers in the stage at the month's start
    converted: int | None  # of them, in a later funnel stage at its end (None: signed)
    conversion_rate: float | None  # converted / at_start × 100, two decimals


class FunnelMonth(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM in the store's time zone
    start: str  # the month's first instant (UTC ISO)
    end: str  # its last instant, or the report's as_of for the report date's month
    partial: bool
    stages: list[MonthStage]  # the funnel's stages in order


class FunnelReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    months: int  # the months covered, the report date's last
    customers: int  # customers with a category as of the report
    stages: list[StageCount]  # the funnel's stages in order, as of the report
    outside: list[StageCount]  # partner, internal: not in the funnel
    by_month: list[FunnelMonth]  # oldest first


def check_months(months: int) -> None:
    if not 1 <= months <= MAX_MONTHS:
        raise InvalidValue("months", str(months), f"must be 1 … {MAX_MONTHS}")


class _Facts:
    """The category facts visible to the query, sorted by customer, business time, version."""

    def __init__(self, tx: Tx, tables: dict[str, str], query: ReportQuery) -> None:
        rows = tx.query(
            f"SELECT customer_id, value, occurred_at FROM {tables['attribute_facts']} "
            "WHERE attribute = 'category' AND occurred_at <= ? AND recorded_at <= ? "
            "ORDER BY customer_id, occurred_at, version",
            (query.as_of_iso, query.known_at_iso),
        )
        ids = [str(r[0]) for r in rows]
        self.customers = len(set(ids))
        _, self.owner = np.unique(np.array(ids, dtype=object), return_inverse=True)
        self.code = np.array([_CODE_OF.get(str(r[1]), _NONE) for r in rows], dtype=np.int64)
        # Fixed-width ISO text: text order is time order, so the cuts compare text.
        self.when = np.array([str(r[2]) for r in rows], dtype="U27")

    def codes_before(self, cut: str, strict: bool) -> np.ndarray:
        """Each customer's category code as of ``cut`` (facts with business time < ``cut``
        when ``strict``, else <=), :data:`_NONE` for customers without one by then."""
        state = np.full(self.customers, _NONE, dtype=np.int64)
        seen = np.flatnonzero(self.when < cut if strict else self.when <= cut)
        if seen.size:
            owners = self.owner[seen]
            # Rows are in time order within a customer: its last seen row is its category.
            last = seen[np.append(owners[1:] != owners[:-1], True)]
            state[self.owner[last]] = self.code[last]
        return state


def _label(code: int) -> str:
    return CATEGORY_LABELS[_CODES[code]]


def _counts(state: np.ndarray, codes: range) -> list[StageCount]:
    return [
        StageCount(stage=_CODES[c].value, label=_label(c), customers=int((state == c).sum()))
        for c in codes
    ]


def _month_stages(start: np.ndarray, end: np.ndarray) -> list[MonthStage]:
    later = (end > start) & (end < FUNNEL_SIZE)
    stages = []
    for c in range(FUNNEL_SIZE):
        there = start == c
        at_start = int(there.sum())
        converted = int((there & later).sum()) if c < FUNNEL_SIZE - 1 else None
        stages.append(
            MonthStage(
                stage=_CODES[c].value,
                label=_label(c),
                at_start=at_start,
                converted=converted,
                conversion_rate=None if converted is None else rate(converted, at_start),
            )
        )
    return stages


def _month_bounds(query: ReportQuery, months: int) -> list[tuple[str, datetime, datetime, bool]]:
    """(YYYY-MM, first instant, last instant, partial) of each month covered, oldest first."""
    today = query.reference_date
    index = today.year * 12 + today.month - 1
    bounds = []
    for m in range(index - months + 1, index + 1):
        first = date(m // 12, m % 12 + 1, 1)
        following = date((m + 1) // 12, (m + 1) % 12 + 1, 1)
        start = datetime.combine(first, time(), query.tz)
        partial = m == index
        end = query.as_of if partial else datetime.combine(following, time(), query.tz)
        if not partial:  # the end of the month's last day: the instant before the next starts
            end = end - timedelta(microseconds=1)
        bounds.append((first.isoformat()[:7], start, end, partial))
    return bounds


def funnel_report(
    tx: Tx, tables: dict[str, str], query: ReportQuery, months: int = DEFAULT_MONTHS
) -> FunnelReport:
    check_months(months)
    facts = _Facts(tx, tables, query)
    now = facts.codes_before(query.as_of_iso, strict=False)
    by_month = []
    for month, start, end, partial in _month_bounds(query, months):
        first, last = iso(start), iso(end)
        stages = _month_stages(
            facts.codes_before(first, strict=True), facts.codes_before(last, strict=False)
        )
        by_month.append(
            FunnelMonth(month=month, start=first, end=last, partial=partial, stages=stages)
        )
    return FunnelReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        months=months,
        customers=int((now != _NONE).sum()),
        stages=_counts(now, range(FUNNEL_SIZE)),
        outside=_counts(now, range(FUNNEL_SIZE, len(_CODES))),
        by_month=by_month,
    )


def table_rows(report: FunnelReport) -> list[dict[str, object]]:
    """One row per stage as of the report (``section`` stages / outside), then one per month
    and funnel stage (``section`` month: ``customers`` are those at the month's start)."""
    rows: list[dict[str, object]] = []
    for section, counts in (("stages", report.stages), ("outside", report.outside)):
        rows += [
            {"section": section, "month": None, "stage": s.stage, "label": s.label,
             "customers": s.customers, "converted": None, "conversion_rate": None}
            for s in counts
        ]  # fmt: skip
    for m in report.by_month:
        rows += [
            {"section": "month", "month": m.month, "stage": s.stage, "label": s.label,
             "customers": s.at_start, "converted": s.converted,
             "conversion_rate": s.conversion_rate}
            for s in m.stages
        ]  # fmt: skip
    return rows
