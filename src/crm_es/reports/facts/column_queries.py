"""The population loaders' questions answered from the columnar copy of the read model.

Each function here gives what its SQL twin in :mod:`crm_es.reports.facts.customers`,
:mod:`crm_es.reports.facts.purchase_arrays` or :mod:`crm_es.reports.facts.purchase_history`
gives, from :class:`~crm_es.reports.facts.fact_columns.FactColumns` instead of a scan; the tests
hold the two paths equal on the same stores, at several (as of, known at).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from crm_es.domain.customer import ROLLING_TIER_WINDOW
from crm_es.domain.times import iso
from crm_es.domain.values import TIER_CURRENCY, TIER_THRESHOLDS, Tier
from crm_es.reports.facts.fact_columns import FactColumns, instant, present_codes
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

__all__ = [
    "codes_of",
    "currency_counts",
    "customer_columns",
    "latest_attribute",
    "purchase_rows",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_TIER_NAMES = tuple(str(tier) for tier, _ in TIER_THRESHOLDS)
_TIER_FLOORS = np.array([floor for _, floor in TIER_THRESHOLDS], dtype=np.int64)
_EXACT_IN_FLOAT = 2**53

# The ids list customer_columns made last and their codes: the purchase facts of the same
# population need not match a million ids again.
_memo_lock = threading.Lock()
_memo: tuple[FactColumns, list[str], IntArray] | None = None


def customer_columns(
    columns: FactColumns, tx: Tx, tables: dict[str, str], query: ReportQuery
) -> tuple[list[str], list[str | None], list[str | None], list[str | None], list[str]]:
    """:func:`~crm_es.reports.facts.customers.customer_rows` from the copy."""
    global _memo
    codes = present_codes(columns, query.as_of_iso, query.known_at_iso)
    ids = [columns.ids[c] for c in codes.tolist()]
    with _memo_lock:
        _memo = (columns, ids, codes)
    refs = [columns.refs[c] for c in codes.tolist()]
    owners = _values_of(columns, "owner", query, codes)
    regions = _values_of(columns, "region", query, codes)
    return ids, refs, owners, regions, _tiers(columns, tx, tables, query, codes)


def codes_of(columns: FactColumns, ids: Sequence[str]) -> IntArray | None:
    """Code of each of ``ids`` (-1: not in the copy); None if they cannot be matched in bulk."""
    with _memo_lock:
        memo = _memo
    if memo is not None and memo[0] is columns and memo[1] is ids:
        return memo[2]
    return columns.codes_of(ids)


def latest_attribute(
    columns: FactColumns, name: str, query: ReportQuery
) -> tuple[IntArray, IntArray]:
    """(codes, value indexes) of the customers with a value of attribute ``name`` as of the
    query: the latest fact by business time, then stream version, that occurred by as_of and
    was recorded by known_at (the copy is sorted so within a customer the last row is it)."""
    if name not in columns.attr_names:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    wanted = columns.attr_names.index(name)
    start, stop = np.searchsorted(columns.attr_name, [wanted, wanted + 1]).tolist()
    occurred = columns.attr_occurred[start:stop]
    valid = occurred <= instant(query.as_of_iso)
    valid &= columns.attr_recorded[start:stop] <= instant(query.known_at_iso)
    code = columns.attr_code[start:stop][valid]
    value = columns.attr_value[start:stop][valid]
    last = np.ones(code.size, dtype=bool)
    np.not_equal(code[1:], code[:-1], out=last[:-1])
    return code[last], value[last]


def _values_of(
    columns: FactColumns, name: str, query: ReportQuery, codes: IntArray
) -> list[str | None]:
    """Each customer's value of ``name`` as of the query, None where it has none."""
    have, value = latest_attribute(columns, name, query)
    table: list[str | None] = [*columns.attr_values, None]
    index = np.full(len(columns.ids), len(table) - 1, dtype=np.int64)
    index[have] = value
    return [table[i] for i in index[codes].tolist()]


def _tiers(
    columns: FactColumns, tx: Tx, tables: dict[str, str], query: ReportQuery, codes: IntArray
) -> list[str]:
    """Tier by the rolling 12-month net spend in the tier currency, as ``tiers_as_of`` gives it
    (a customer without spend in the window has the lowest, the tier of 0)."""
    start = instant(iso(query.as_of - ROLLING_TIER_WINDOW))
    window = (columns.occurred > start) & columns.cut(query.as_of_iso, query.known_at_iso)
    if TIER_CURRENCY in columns.currencies:
        window &= columns.currency == columns.currencies.index(TIER_CURRENCY)
    else:
        window[:] = False
    spend = _sums(columns.code[window], columns.amount[window], len(columns.ids))
    window_sql = "p.occurred_at > ? AND p.occurred_at <= ? AND p.recorded_at <= ?"
    cut = (query.as_of_iso, query.known_at_iso)
    # Without refunds SQLite would still plan the join from the purchases (their time index):
    # a scan of every purchase in the window, for nothing.
    any_refund = tx.query(
        f"SELECT 1 FROM {tables['refunds']} WHERE currency = ? AND occurred_at <= ? "
        "AND recorded_at <= ? LIMIT 1",
        (TIER_CURRENCY, *cut),
    )
    refunds = any_refund and tx.query(
        f"SELECT r.customer_id, SUM(r.amount) FROM {tables['refunds']} AS r "
        f"JOIN {tables['purchases']} AS p ON p.customer_id = r.customer_id "
        f"AND p.order_id = r.order_id WHERE r.currency = ? AND r.occurred_at <= ? "
        f"AND r.recorded_at <= ? AND {window_sql} GROUP BY r.customer_id",
        (TIER_CURRENCY, *cut, iso(query.as_of - ROLLING_TIER_WINDOW), *cut),
    )
    if refunds:
        at = columns.codes_of([str(r[0]) for r in refunds])
        assert at is not None  # ids of the copy are fixed width
        for code, (_, refunded) in zip(at.tolist(), refunds, strict=True):
            spend[code] -= int(refunded)
    # tier_for_spend: the first threshold (highest first) the spend reaches; below all of them
    # (negative spend) the lowest tier.
    tier = np.full(len(columns.ids), _TIER_NAMES.index(str(Tier.STANDARD)), dtype=np.int64)
    for k in range(len(_TIER_FLOORS) - 1, -1, -1):
        tier[spend >= _TIER_FLOORS[k]] = k
    return [_TIER_NAMES[t] for t in tier[codes].tolist()]


def _sums(code: IntArray, amount: IntArray, n: int) -> IntArray:
    """Exact per-code sums in int64: bincount's float64 is exact while every partial sum is
    below 2^53; otherwise (never in practice) ``np.add.at``."""
    largest = int(np.abs(amount).max()) if amount.size else 0
    if largest * amount.size < _EXACT_IN_FLOAT:
        return np.bincount(code, weights=amount, minlength=n).astype(np.int64)
    sums = np.zeros(n, dtype=np.int64)
    np.add.at(sums, code, amount)
    return sums


def purchase_rows(
    columns: FactColumns, query: ReportQuery, currency: str, ids: Sequence[str], other: int = 0
) -> tuple[IntArray, IntArray, IntArray] | None:
    """(index in ``ids`` or -1, day, amount in ``currency`` else ``other``) of every purchase row
    by the cut, sorted by customer and day when ``ids`` is in id order; None: the SQL path
    applies."""
    codes = codes_of(columns, ids)
    if codes is None:
        return None
    position = np.full(len(columns.ids), -1, dtype=np.int64)
    known = codes >= 0
    position[codes[known]] = np.flatnonzero(known)
    mask = columns.cut(query.as_of_iso, query.known_at_iso)
    owner = position[columns.code[mask]]
    amount = columns.amount[mask]
    if currency in columns.currencies:
        same = columns.currency[mask] == columns.currencies.index(currency)
        amount = np.where(same, amount, other)
    else:
        amount = np.full_like(amount, other)
    return owner, columns.day[mask], amount


def currency_counts(columns: FactColumns, query: ReportQuery) -> dict[str, int]:
    """:func:`~crm_es.reports.facts.purchase_history.purchases_by_currency` from the copy."""
    mask = columns.cut(query.as_of_iso, query.known_at_iso)
    counts = np.bincount(columns.currency[mask], minlength=len(columns.currencies)).tolist()
    return {c: n for c, n in zip(columns.currencies, counts, strict=True) if n}
