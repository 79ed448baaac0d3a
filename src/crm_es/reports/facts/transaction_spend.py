"""What each customer's first purchase day was worth, and who paid in another currency: with the
net spend of :mod:`crm_es.reports.facts.purchase_arrays`, the spend of the repeat transactions the
Gamma-Gamma model is fitted on.

A transaction is a purchase day, as in the BG/NBD (same-day purchases merge). Its value is the
day's purchases in the report currency minus the refunds of that day's orders, whenever the
refund came (by the cut). The model is fitted on *repeat* transactions (Fader, Hardie & Lee 2005
leave the first one out: it opens the relationship and is often unlike the rest), so the value
report needs the first day's value of each customer apart from the total.

Money is never converted: a customer with any purchase (or refund) in another currency by the
cut is flagged, and the value report leaves them out of the spend model and counts them.

One scan of the purchases as whole-table columns, like the population's (a row per purchase
through Python would cost seconds at ten million purchases): customer ids, days, and amounts in
the currency with -1 standing for "another currency" (amounts are never negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from crm_es.reports.facts.column_queries import purchase_rows
from crm_es.reports.facts.fact_columns import fact_columns
from crm_es.reports.facts.purchase_scan import parse_days, scan_purchase_columns
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

__all__ = ["TransactionSpend", "load_transaction_spend"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_OTHER = -1  # the scan's amount of a purchase in another currency


class TransactionSpend(NamedTuple):
    """Aligned with the ``ids`` given (profile order)."""

    first_day_spend: FloatArray  # minor units: the first purchase day's net value
    other_currency: BoolArray  # a purchase or refund in another currency by the cut


def load_transaction_spend(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    currency: str,
    ids: Sequence[str],
    first_day: IntArray,
) -> TransactionSpend:
    """First-day value and other-currency flag of the customers ``ids``, whose first purchase
    days (day numbers, as :class:`~crm_es.reports.facts.purchase_arrays.PurchaseFacts` has
    them) are ``first_day``; other customers' purchases are ignored."""
    n = len(ids)
    owner, days, amounts = _scan(tx, tables, query, currency, ids)
    known = owner >= 0
    other = np.zeros(n, dtype=bool)
    other[owner[known & (amounts == _OTHER)]] = True
    on_first = known & (amounts != _OTHER)
    on_first[on_first] = days[on_first] == first_day[owner[on_first]]
    # float64 sums are exact below 2^53 minor units (~9·10^13 yuan on one day): ample.
    first_spend = np.bincount(owner[on_first], weights=amounts[on_first], minlength=n)
    cut, params = query.cut("r")
    # Without refunds SQLite would still plan the join from the purchases: a scan of them all.
    any_refund = tx.query(f"SELECT 1 FROM {tables['refunds']} AS r WHERE {cut} LIMIT 1", params)
    refunds = any_refund and tx.query(
        f"SELECT r.customer_id, p.day, r.amount, r.currency FROM {tables['refunds']} r "
        f"JOIN {tables['purchases']} p ON p.customer_id = r.customer_id "
        f"AND p.order_id = r.order_id WHERE {cut}",
        params,
    )
    if refunds:
        index = {cid: i for i, cid in enumerate(ids)}
        refund_ids, refund_days, refunded, refund_currencies = zip(*refunds, strict=True)
        at = np.fromiter((index.get(c, -1) for c in refund_ids), np.int64, len(refunds))
        day = parse_days(",".join(refund_days))
        value = np.asarray(refunded, dtype=np.int64)
        same = np.array([c == currency for c in refund_currencies], dtype=bool)
        other[at[(at >= 0) & ~same]] = True
        first = (at >= 0) & same
        first[first] = day[first] == first_day[at[first]]
        first_spend -= np.bincount(at[first], weights=value[first], minlength=n)
    return TransactionSpend(np.asarray(first_spend, dtype=np.float64), other)


def _scan(
    tx: Tx, tables: dict[str, str], query: ReportQuery, currency: str, ids: Sequence[str]
) -> tuple[IntArray, IntArray, IntArray]:
    """(customer index or -1, day number, amount or -1) of every purchase by the cut."""
    columns = fact_columns(tx, tables)
    rows = purchase_rows(columns, query, currency, ids, _OTHER) if columns else None
    if rows is not None:  # from the read model's copy in memory
        return rows
    return scan_purchase_columns(tx, tables, query, currency, ids, other=_OTHER)
