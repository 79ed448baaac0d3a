"""客户品类汇总: how many customers there are of each category, industry, region, company size
and income band, as of a date, for every customer or for those a list's filters select.

The counts are of the customers :func:`~crm_es.reports.facts.customer_selection.select_customers`
keeps, so a summary of a selection adds up to its list's total, attribute by attribute.
Customers without a value count under ``(none)``. Values are listed most customers first, then
by value, so equal counts keep one order.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import msgspec

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.reports.facts.customer_selection import ListFilters, select_customers
from crm_es.reports.facts.customer_table import PROFILE_ATTRIBUTES
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# The attributes summarised, in the order the tables are shown.
SUMMARY_ATTRIBUTES: Final = PROFILE_ATTRIBUTES


class ValueCount(msgspec.Struct, frozen=True):
    value: str
    customers: int
    share: float  # percent of the summary's total, two decimals


class CustomerSummary(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    filters: ListFilters
    total: int
    by: dict[str, list[ValueCount]]  # attribute -> its values


def customer_summary(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    filters: ListFilters,
    rule: ChurnRule,
) -> CustomerSummary:
    customers = select_customers(tx, tables, query, filters, rule).customers
    total = len(customers)
    by = {}
    for name in SUMMARY_ATTRIBUTES:
        counts = Counter(str(getattr(c, name)) for c in customers)
        by[name] = [
            ValueCount(value, n, round(100 * n / total, 2))
            for value, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    return CustomerSummary(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        filters=filters,
        total=total,
        by=by,
    )


def table_rows(report: CustomerSummary) -> list[dict[str, object]]:
    """One row per (attribute, value): the CSV form; a table shows one table per attribute."""
    return [
        {"attribute": name, "value": v.value, "customers": v.customers, "share": v.share}
        for name, values in report.by.items()
        for v in values
    ]
