"""Revenue, orders and new customers by month, with the change against the previous period.

Months are calendar months in the store's time zone. Revenue is net and per currency: purchases
less refunds, each counted in the month it occurred (a refund lowers the month it was made in),
and amounts in different currencies are never added up. Orders count purchases (in any
currency); new customers count the customers whose earliest event (from which the other reports
count them as present) fell in the month, so the new customers of every month add up to the
customers of the segments report.

The month of the report date is usually not over: it is counted up to the report date and
compared with the same days of the month before (1–7 December against 1–7 November), so its
change says how the month is going, not that it has days left. Every other month is compared
with the whole month before it. As every report, it is as of (D, T): fact rows that occurred
by D and were recorded by T, so the figures for (D, T) never change.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import msgspec
import numpy as np

from crm_es.domain.times import iso
from crm_es.domain.values import format_minor
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


class MonthFigures(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM
    first_day: str  # the days counted: the whole month, or up to the report date
    last_day: str
    partial: bool  # the report date's month, not over by then
    orders: int
    new_customers: int
    revenue: dict[str, str]  # currency -> net revenue (decimal string); every report currency
    # The previous period: the month before (the same days of it for a partial month); None
    # for the first month, which has nothing before it to compare with.
    previous_first_day: str | None
    previous_last_day: str | None
    previous_orders: int | None
    previous_new_customers: int | None
    previous_revenue: dict[str, str] | None


class MonthlyReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    currencies: list[str]  # the one sold on most days first
    months: list[MonthFigures]  # oldest first, from the first month with a fact


class _Day(msgspec.Struct):
    orders: int = 0
    new_customers: int = 0
    revenue: dict[str, int] = {}  # minor units


def local_days(instants: Sequence[str], tz: tzinfo) -> list[date]:
    """The calendar day in ``tz`` of each row time (fixed-width UTC ISO text, as stored).

    By search among the instants at which each local day starts, not a time zone conversion per
    row: row times sort as text, so one sorted array of day starts answers for every row.
    """
    if not instants:
        return []
    first = datetime.fromisoformat(min(instants)).astimezone(tz).date()
    last = datetime.fromisoformat(max(instants)).astimezone(tz).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    starts = np.array([iso(datetime.combine(d, time(), tz).astimezone(UTC)) for d in days])
    index = np.searchsorted(starts, np.array(instants), side="right") - 1
    return [days[max(0, i)] for i in index.tolist()]


def _daily(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[date, _Day]:
    """Orders, net revenue and new customers per local day, as of the query."""
    cut, params = query.cut()
    days: dict[date, _Day] = {}

    def day(d: date) -> _Day:
        found = days.get(d)
        if found is None:
            found = days[d] = _Day(revenue={})
        return found

    # Purchases keep their local day; refunds and presence only their instants.
    for text, currency, orders, amount in tx.query(
        f"SELECT day, currency, COUNT(*), SUM(amount) FROM {tables['purchases']} "
        f"WHERE {cut} GROUP BY day, currency",
        params,
    ):
        row = day(date.fromisoformat(str(text)))
        row.orders += int(orders)
        row.revenue[str(currency)] = row.revenue.get(str(currency), 0) + int(amount)
    refunds = tx.query(
        f"SELECT occurred_at, currency, amount FROM {tables['refunds']} WHERE {cut}", params
    )
    for d, (_, currency, amount) in zip(
        local_days([str(r[0]) for r in refunds], query.tz), refunds, strict=True
    ):
        row = day(d)
        row.revenue[str(currency)] = row.revenue.get(str(currency), 0) - int(amount)
    firsts = tx.query(
        f"SELECT MIN(occurred_at) FROM {tables['presence']} WHERE {cut} GROUP BY customer_id",
        params,
    )
    for d, count in Counter(local_days([str(r[0]) for r in firsts], query.tz)).items():
        day(d).new_customers += count
    return days


def _month_start(d: date, back: int = 0) -> date:
    """The first day of the month ``back`` months before the month of ``d``."""
    months = d.year * 12 + d.month - 1 - back
    return date(months // 12, months % 12 + 1, 1)


def _month_end(start: date) -> date:
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


class _Totals(msgspec.Struct):
    orders: int = 0
    new_customers: int = 0
    revenue: dict[str, int] = {}

    def add(self, row: _Day) -> None:
        self.orders += row.orders
        self.new_customers += row.new_customers
        for currency, amount in row.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, 0) + amount

    def money(self, currencies: list[str]) -> dict[str, str]:
        return {c: format_minor(self.revenue.get(c, 0), c) for c in currencies}


def _totals(days: dict[date, _Day], first: date, last: date) -> _Totals:
    totals = _Totals(revenue={})
    for d, row in days.items():
        if first <= d <= last:
            totals.add(row)
    return totals


def monthly_report(tx: Tx, tables: dict[str, str], query: ReportQuery) -> MonthlyReport:
    today = query.reference_date
    days = _daily(tx, tables, query)
    purchase_days: Counter[str] = Counter()
    by_month: dict[date, _Totals] = {}
    for d, row in days.items():
        purchase_days.update(row.revenue.keys())
        by_month.setdefault(_month_start(d), _Totals(revenue={})).add(row)
    currencies = sorted(purchase_days, key=lambda c: (-purchase_days[c], c))
    months: list[MonthFigures] = []
    count = 0
    if days:
        first_month = _month_start(min(days))
        count = (today.year - first_month.year) * 12 + today.month - first_month.month + 1
    for back in range(count - 1, -1, -1):
        first = _month_start(today, back)
        last = min(_month_end(first), today)
        partial = last < _month_end(first)
        now = by_month.get(first, _Totals(revenue={}))
        before: _Totals | None = None
        prev_first = prev_last = None
        if back < count - 1:  # the first month has nothing before it to compare with
            prev_first = _month_start(today, back + 1)
            prev_last = _month_end(prev_first)
            if partial:  # the same days of the month before (up to its last day)
                prev_last = min(prev_last, prev_first.replace(day=min(last.day, prev_last.day)))
                before = _totals(days, prev_first, prev_last)
            else:
                before = by_month.get(prev_first, _Totals(revenue={}))
        months.append(
            MonthFigures(
                month=first.isoformat()[:7],
                first_day=first.isoformat(),
                last_day=last.isoformat(),
                partial=partial,
                orders=now.orders,
                new_customers=now.new_customers,
                revenue=now.money(currencies),
                previous_first_day=prev_first.isoformat() if prev_first else None,
                previous_last_day=prev_last.isoformat() if prev_last else None,
                previous_orders=before.orders if before else None,
                previous_new_customers=before.new_customers if before else None,
                previous_revenue=before.money(currencies) if before else None,
            )
        )
    return MonthlyReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=today.isoformat(),
        currencies=currencies,
        months=months,
    )
