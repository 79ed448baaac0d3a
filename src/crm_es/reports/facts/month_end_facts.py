"""What a status at each of a series of earlier instants (month ends) needs beyond the purchase
days, read once for a query: when each customer came to exist, and the explicit churn facts
with the first instant each had occurred by.

A load as of an instant e known at T (:func:`~crm_es.reports.facts.customers.present_customers`,
:func:`~crm_es.reports.facts.purchase_history.load_churn_facts`) keeps the rows that occurred by
e and were recorded by T. For every e up to the query's ``as_of``, those are the rows of one load
as of the query whose business time is by e; so one load, each row tagged with the first e it
occurred by, answers them all. Times compare as the SQL cut compares them: the rows' fixed-width
UTC texts (or, from the columnar copy, their microseconds, which order the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from crm_es.analytics.month_end_statuses import ExplicitChurns
from crm_es.reports.facts.column_queries import codes_of
from crm_es.reports.facts.fact_columns import fact_columns, instant
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

__all__ = ["churn_facts_by_end", "existing_from"]

IntArray = npt.NDArray[np.int64]


def existing_from(
    tx: Tx, tables: dict[str, str], query: ReportQuery, ids: Sequence[str], ends: Sequence[str]
) -> IntArray:
    """For each customer of ``ids`` (present as of ``query``), the index into ``ends`` (row
    times, ascending, none after the query's ``as_of``) of the first one by which a presence row
    of theirs had occurred (``len(ends)``: none)."""
    columns = fact_columns(tx, tables)
    codes = codes_of(columns, ids) if columns is not None else None
    if columns is not None and codes is not None:
        visible = columns.presence_occurred <= instant(query.as_of_iso)
        visible &= columns.presence_recorded <= instant(query.known_at_iso)
        earliest = np.full(len(columns.ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, columns.presence_code[visible], columns.presence_occurred[visible])
        end_us = np.array([instant(e) for e in ends], dtype=np.int64)
        found = np.full(len(ids), len(ends), dtype=np.int64)
        known = codes >= 0
        found[known] = np.searchsorted(end_us, earliest[codes[known]], side="left")
        return found
    rows = tx.query(
        f"SELECT customer_id, MIN(occurred_at) FROM {tables['presence']} "
        "WHERE occurred_at <= ? AND recorded_at <= ? GROUP BY customer_id",
        (query.as_of_iso, query.known_at_iso),
    )
    first = dict(rows)
    # Customers without a row sort after every end: "~" follows every digit.
    times = np.array([str(first.get(cid, "~")) for cid in ids], dtype=str)
    return np.searchsorted(np.array(ends, dtype=str), times, side="left").astype(np.int64)


def churn_facts_by_end(
    tx: Tx, tables: dict[str, str], query: ReportQuery, ids: Sequence[str], ends: Sequence[str]
) -> ExplicitChurns:
    """The churn facts as of ``query`` of the customers ``ids`` (by index into them), in the
    order :func:`~crm_es.reports.facts.purchase_history.load_churn_facts` reads them (grouped
    by customer, then by business time and version), each with the index into ``ends`` of the
    first end it occurred by."""
    cut, params = query.cut()
    rows = tx.query(
        f"SELECT customer_id, kind, occurred_at FROM {tables['churn_facts']} WHERE {cut} "
        "ORDER BY customer_id, occurred_at, version",
        params,
    )
    if not rows:
        return ExplicitChurns.none()
    index = {cid: i for i, cid in enumerate(ids)}
    kept = [(index[cid], kind, at) for cid, kind, at in rows if cid in index]
    owner = np.array([k[0] for k in kept], dtype=np.int64)
    churned = np.array([k[1] == "churned" for k in kept], dtype=bool)
    times = np.array([str(k[2]) for k in kept], dtype=str)
    ends_text = np.array(ends, dtype=str)
    seen = np.searchsorted(ends_text, times, side="left") if times.size else owner.copy()
    return ExplicitChurns(owner, np.asarray(seen, dtype=np.int64), churned)
