"""Per-customer purchase history as of a query, and the rule-based churn status built on it.

Shared by the segments report (RFM, lifecycle) and the churn report (rule status, BG/NBD), so
both agree on what a purchase day, a net spend and a churned customer are. These are the
definitions, one customer at a time; the two reports compute the same figures for the whole
population at once with :mod:`crm_es.projections.purchase_arrays`, and the tests hold both equal.
"""

from __future__ import annotations

from datetime import date

import msgspec

from crm_es.reports.facts.column_queries import currency_counts
from crm_es.reports.facts.customers import customer_rows
from crm_es.reports.facts.fact_columns import fact_columns
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


class CustomerRow(msgspec.Struct):
    customer_id: str
    external_ref: str | None
    owner: str | None
    region: str | None
    tier: str


class PurchaseHistory(msgspec.Struct):
    days: list[date]  # distinct purchase days up to as_of, ascending
    net_spend: int = 0  # minor units of the report currency, purchases minus refunds


class ChurnFacts(msgspec.Struct):
    explicit_churned: bool = False  # latest churn fact is CustomerChurned
    won_back_on: date | None = None  # the day (store time zone) of the latest CustomerWonBack


def load_customers(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, CustomerRow]:
    """The customers present as of the query, one row each, with their attributes as of then."""
    return {
        cid: CustomerRow(cid, ref, owner, region, tier)
        for cid, ref, owner, region, tier in zip(*customer_rows(tx, tables, query), strict=True)
    }


def purchases_by_currency(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, int]:
    """How many purchases were paid in each currency by the cut, by currency."""
    columns = fact_columns(tx, tables)
    if columns is not None:
        return currency_counts(columns, query)
    cut, params = query.cut()
    rows = tx.query(
        f"SELECT currency, COUNT(*) FROM {tables['purchases']} WHERE {cut} GROUP BY currency",
        params,
    )
    return {str(currency): int(count) for currency, count in sorted(rows)}


def sales_currencies(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[str]:
    """Every currency a purchase was paid in by the cut, sorted."""
    return list(purchases_by_currency(tx, tables, query))


def load_purchase_histories(
    tx: Tx, tables: dict[str, str], query: ReportQuery, currency: str
) -> dict[str, PurchaseHistory]:
    cut, params = query.cut()
    histories: dict[str, PurchaseHistory] = {}
    rows = tx.query(
        f"SELECT customer_id, day, SUM(CASE WHEN currency = ? THEN amount ELSE 0 END) "
        f"FROM {tables['purchases']} WHERE {cut} GROUP BY customer_id, day "
        "ORDER BY customer_id, day",
        (currency, *params),
    )
    for customer_id, day, amount in rows:
        history = histories.get(customer_id)
        if history is None:
            history = histories[customer_id] = PurchaseHistory(days=[])
        history.days.append(date.fromisoformat(day))
        history.net_spend += int(amount)
    refunds = tx.query(
        f"SELECT customer_id, SUM(amount) FROM {tables['refunds']} "
        f"WHERE {cut} AND currency = ? GROUP BY customer_id",
        (*params, currency),
    )
    for customer_id, amount in refunds:
        if customer_id in histories:
            histories[customer_id].net_spend -= int(amount)
    return histories


def load_churn_facts(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, ChurnFacts]:
    cut, params = query.cut()
    facts: dict[str, ChurnFacts] = {}
    rows = tx.query(
        f"SELECT customer_id, kind, day FROM {tables['churn_facts']} WHERE {cut} "
        "ORDER BY customer_id, occurred_at, version",
        params,
    )
    for customer_id, kind, day in rows:
        fact = facts.setdefault(customer_id, ChurnFacts())
        fact.explicit_churned = kind == "churned"
        if kind == "won_back":
            fact.won_back_on = date.fromisoformat(day)
    return facts
