"""Customers merged as of a query, applied to every report in one place.

A merge (:mod:`crm_es.domain.decide.merges`) folds a duplicate into a survivor at business time
D0, recorded at T0. A report as of D known at T, with D >= D0 and T >= T0, counts the pair as
ONE customer, the survivor; before that (or known before T0) as two, as it did then, so a
report for a past (D, T) never changes.

How: :func:`with_merges` gives the report's transaction views of the read-model tables under
the merges the query sees (resolved through chains: A into B, then B into C, is A into C):

- **facts follow the survivor** (presence, purchases, refunds, survey answers, complaints,
  care tasks, contacts, services, opportunities): the duplicate's rows read as the survivor's,
  so its purchases count in the pair's RFM, churn and value, its answers in satisfaction, its
  contacts in the contact report. Ids of its orders, complaints, surveys, tasks and
  opportunities get ``@<duplicate id>`` so they never collide with the survivor's own.
- **the survivor's attributes stand** (profile, attribute and tag histories, churn marks,
  points, birthdays, contact hashes): the duplicate's rows are left out; its live points
  were moved to the survivor by the merge itself, and it is no longer a customer of its own
  (no list, no find, no duplicate pair, no greeting).

Reports run their SQL unchanged: the views are common table expressions put in front of each
statement that names one (``Tx.rewrite``). A store without merges seen by the query reads its
tables as ever; the columnar copy (:mod:`.fact_columns`) applies the same merges to its arrays.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from crm_es.projections.models import read_models
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# Fact tables whose rows follow the survivor -> the id column made unique per customer.
FOLLOW: Final[dict[str, str | None]] = {
    "presence": None, "purchases": "order_id", "refunds": "order_id",
    "survey_answers": "survey_id", "complaint_events": "complaint_id", "task_events": "task_id",
    "contact_facts": None, "service_facts": None, "opportunity_events": "opportunity_id",
}  # fmt: skip
# Tables of the customer's own attributes: the duplicate's rows are left out.
LEAVE_OUT: Final = frozenset({
    "profile", "attribute_facts", "tag_facts", "churn_facts", "points_facts", "birthday_facts",
    "contact_hashes",
})  # fmt: skip
VIEW_PREFIX: Final = "merged_"
_MAP = "crm_merge_map"
_WITH = re.compile(r"\s*WITH(\s+RECURSIVE)?\s", re.IGNORECASE)


def merged_into(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """Duplicate id -> the survivor it counts as for ``query`` (the end of its chain)."""
    if "merge_facts" not in tables:
        return {}
    rows = tx.query(
        f"SELECT duplicate_id, survivor_id FROM {tables['merge_facts']} "
        "WHERE occurred_at <= ? AND recorded_at <= ?",
        (query.as_of_iso, query.known_at_iso),
    )
    direct = {str(d): str(s) for d, s in rows}
    resolved = {}
    for duplicate, survivor in direct.items():
        seen = {duplicate}
        while survivor in direct and survivor not in seen:  # a cycle cannot be decided
            seen.add(survivor)
            survivor = direct[survivor]
        resolved[duplicate] = survivor
    return resolved


def with_merges(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """``tables`` as the report reads them under the merges ``query`` sees: the names of views
    (set up on ``tx``) where a merge applies, the tables themselves where none does."""
    merged = merged_into(tx, tables, query)
    if not merged:
        return tables
    views = {name: _view(name, tables[name]) for name in (*FOLLOW, *LEAVE_OUT) if name in tables}
    tx.rewrite = MergedViews(merged, views, tables)
    return {**tables, **{name: f"{VIEW_PREFIX}{name}" for name in views}}


class MergedViews:
    """What :func:`with_merges` puts on a transaction: the views a statement names, put in
    front of it; it keeps the merges (``merged``) and the tables as stored (``stored``) for the
    columnar copy, which applies the same merges to its arrays."""

    def __init__(
        self, merged: dict[str, str], views: dict[str, str], stored: dict[str, str]
    ) -> None:
        self.merged, self.views, self.stored = merged, views, stored
        pairs = ", ".join(f"({_text(d)}, {_text(s)})" for d, s in sorted(merged.items()))
        self.head = f"{_MAP}(duplicate_id, survivor_id) AS (VALUES {pairs})"

    def __call__(self, sql: str) -> str:
        used = [f"{VIEW_PREFIX}{name} AS ({body})" for name, body in self.views.items()
                if f"{VIEW_PREFIX}{name}" in sql]  # fmt: skip
        if not used:
            return sql
        ctes = ", ".join([self.head, *used])
        found = _WITH.match(sql)
        if found is None:
            return f"WITH {ctes} {sql}"
        return f"{found.group(0)}{ctes}, {sql[found.end() :]}"


def _view(name: str, physical: str) -> str:
    if name in LEAVE_OUT:
        return (
            f"SELECT * FROM {physical} WHERE customer_id NOT IN (SELECT duplicate_id FROM {_MAP})"
        )
    key = FOLLOW[name]
    columns = [
        "COALESCE(m.survivor_id, t.customer_id) AS customer_id" if c == "customer_id"
        else f"COALESCE(t.{c} || '@' || m.duplicate_id, t.{c}) AS {c}" if c == key
        else f"t.{c}"
        for c in _columns()[name]
    ]  # fmt: skip
    return (
        f"SELECT {', '.join(columns)} FROM {physical} AS t "
        f"LEFT JOIN {_MAP} AS m ON m.duplicate_id = t.customer_id"
    )


@functools.cache
def _columns() -> dict[str, list[str]]:
    """Each read-model table's columns, in their order (from its declaration)."""
    found = {}
    for model in read_models():
        for table, ddl in model.tables.items():
            words = [part.split() for part in ddl.split(", ")]
            found[table] = [w[0] for w in words if len(w) > 1 and w[0].islower()]
    return found


def _text(value: str) -> str:
    """An SQL text literal (ids are UUID texts; quoted anyway)."""
    return "'" + value.replace("'", "''") + "'"
