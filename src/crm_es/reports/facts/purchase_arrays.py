"""Per-customer purchase facts as numpy arrays: the population-wide path of the reports.

The same facts as :mod:`crm_es.reports.facts.purchase_history` — distinct purchase days up to the
query's cut, net spend in one currency (purchases minus refunds) and the churn rule built on the
median inter-purchase interval — but computed for every customer at once. The store scans the
purchases once and returns three strings (customer ids, days, amounts), not a row per purchase
nor a GROUP BY (which makes SQLite sort a million rows); numpy does the rest: match ids to
customers, parse days, de-duplicate and sort (customer, day) keys, first/last day, grouped median
of the gaps, sums. No Python loop runs per purchase, and none calls numpy per customer.

Arrays are aligned with the customer list of :func:`load_customer_columns` (profile order). Days are
integers, days since 1970-01-01; a customer without a purchase day has 0 days and 0 first/last day.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from crm_es.analytics.churn_rule import NO_RETURN
from crm_es.domain.times import day_number
from crm_es.reports.facts.column_queries import purchase_rows
from crm_es.reports.facts.customers import customer_rows
from crm_es.reports.facts.fact_columns import fact_columns
from crm_es.reports.facts.purchase_history import ChurnFacts
from crm_es.reports.facts.purchase_scan import scan_purchase_columns
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

__all__ = [
    "CustomerColumns",
    "PurchaseFacts",
    "day_number",
    "explicit_churned",
    "explicit_returns",
    "load_customer_columns",
    "load_purchase_facts",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class CustomerColumns(NamedTuple):
    """The rows of :func:`~crm_es.reports.facts.purchase_history.load_customers`, by column."""

    ids: list[str]
    external_refs: list[str | None]
    owners: list[str | None]
    regions: list[str | None]
    tiers: list[str]


class PurchaseFacts(NamedTuple):
    purchase_days: IntArray  # distinct purchase days up to the cut (any currency)
    first_day: IntArray
    last_day: IntArray
    median_gap: FloatArray  # median days between consecutive purchase days; NaN below 2 days
    net_spend: list[int]  # minor units of the currency, purchases minus refunds; exact ints
    day_owner: IntArray  # every distinct (customer index, day) pair, by customer then day ...
    day_of: IntArray  # ... and its day


def load_customer_columns(tx: Tx, tables: dict[str, str], query: ReportQuery) -> CustomerColumns:
    """The customers present as of the query, with their attributes as of then."""
    return CustomerColumns(*customer_rows(tx, tables, query))


def load_purchase_facts(
    tx: Tx, tables: dict[str, str], query: ReportQuery, currency: str, ids: Sequence[str]
) -> PurchaseFacts:
    """Purchase facts of the customers ``ids``, aligned with them; other customers are ignored.

    One scan of the purchases, aggregated into whole-table columns (customer ids, days, amounts in
    the currency) in scan order: a GROUP BY customer would sort a million rows, which costs SQLite
    several times the scan. The aggregates of one query see the rows in the same order. Customer
    ids come as one string of fixed-width ids (UUIDs) matched in numpy, or as a JSON list when
    their widths differ.
    """
    cut, params = query.cut()
    columns = fact_columns(tx, tables)
    rows = purchase_rows(columns, query, currency, ids) if columns is not None else None
    if rows is not None:  # from the read model's copy in memory, sorted by customer and day
        owner, days, amounts = rows
    else:
        owner, days, amounts = scan_purchase_columns(tx, tables, query, currency, ids)
    known = owner >= 0
    facts = _day_facts(owner[known], days[known], len(ids))
    net_spend = _sum_by_owner(owner, amounts, known, len(ids))
    refunds = tx.query(
        f"SELECT customer_id, SUM(amount) FROM {tables['refunds']} "
        f"WHERE {cut} AND currency = ? GROUP BY customer_id",
        (*params, currency),
    )
    if refunds:
        index = {cid: i for i, cid in enumerate(ids)}
        for customer_id, refunded in refunds:
            i = index.get(customer_id)
            if i is not None and facts.purchase_days[i] > 0:
                net_spend[i] -= int(refunded)
    return facts._replace(net_spend=net_spend)


def _sum_by_owner(owner: IntArray, amounts: IntArray, known: BoolArray, n: int) -> list[int]:
    """Exact per-customer sums: in int64 when no sum can overflow, else in Python ints."""
    largest = max(int(amounts.max()), -int(amounts.min())) if amounts.size else 0
    if largest * amounts.size < 2**53:  # every partial sum exact in float64: bincount
        summed: list[int] = (
            np.bincount(owner[known], weights=amounts[known], minlength=n).astype(np.int64).tolist()
        )
        return summed
    if largest * amounts.size < 2**63:
        sums = np.zeros(n, dtype=np.int64)
        np.add.at(sums, owner[known], amounts[known])
        totals: list[int] = sums.tolist()
        return totals
    exact = [0] * n
    for i, value in zip(owner.tolist(), amounts.tolist(), strict=True):
        if i >= 0:
            exact[i] += value
    return exact


def _day_facts(owner: IntArray, days: IntArray, n: int) -> PurchaseFacts:
    """Per-customer facts from (customer index, day) pairs in any order, duplicates allowed."""
    purchase_days = np.zeros(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    median_gap = np.full(n, np.nan)
    if days.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PurchaseFacts(purchase_days, first, last, median_gap, [], empty, empty)
    low = int(days.min())
    span = int(days.max()) - low + 1
    key = owner * span + (days - low)
    if np.any(key[1:] < key[:-1]):  # the copy's rows come sorted already
        key = np.sort(key)  # by customer, then day
    distinct = np.empty(key.size, dtype=bool)
    distinct[0] = True
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    owner, day = np.divmod(key[distinct], span)
    day += low
    purchase_days = np.bincount(owner, minlength=n).astype(np.int64)
    ends = np.cumsum(purchase_days)
    buyers = purchase_days > 0
    first[buyers] = day[(ends - purchase_days)[buyers]]
    last[buyers] = day[ends[buyers] - 1]
    # Gaps between consecutive days of one customer, sorted within each customer.
    same = owner[1:] == owner[:-1]
    gaps = np.diff(day)[same]
    if gaps.size:
        width = int(gaps.max()) + 1
        keys = owner[1:][same] * width + gaps
        if (int(owner[-1]) + 1) * width <= 2**31:  # the same order, half the bytes to sort
            keys = keys.astype(np.int32)
        gaps = np.sort(keys).astype(np.int64) % width
        n_gaps = np.maximum(purchase_days - 1, 0)
        repeat = n_gaps > 0
        start = (np.cumsum(n_gaps) - n_gaps)[repeat]
        low_mid = gaps[start + (n_gaps[repeat] - 1) // 2]
        high_mid = gaps[start + n_gaps[repeat] // 2]
        # (a + b) / 2 of integers is exact in float64, as numpy's median/percentile gives it.
        median_gap[repeat] = (low_mid + high_mid) / 2
    return PurchaseFacts(purchase_days, first, last, median_gap, [], owner, day)


def explicit_returns(facts: dict[str, ChurnFacts], ids: Sequence[str]) -> IntArray:
    """Day number of each customer's latest explicit win-back (``NO_RETURN``: none)."""
    days = np.full(len(ids), NO_RETURN, dtype=np.int64)
    if facts:
        for i, cid in enumerate(ids):
            f = facts.get(cid)
            if f is not None and f.won_back_on is not None:
                days[i] = day_number(f.won_back_on)
    return days


def explicit_churned(facts: dict[str, ChurnFacts], ids: Sequence[str]) -> BoolArray:
    flags = np.zeros(len(ids), dtype=bool)
    if facts:
        for i, cid in enumerate(ids):
            f = facts.get(cid)
            if f is not None and f.explicit_churned:
                flags[i] = True
    return flags
