"""Which customers a list, a campaign export or a summary takes: the filters and their one
meaning, shared by all three so a summary of a selection counts exactly the customers its list
shows.

Filters combine with AND; the values given to one filter combine with OR (``region`` 华东 or
华南). Each filter matches the customer's value as of the query, known at its knowledge time
(:mod:`crm_es.reports.facts.customer_table`): ``segment`` matches either segment map (R×F grid
or Chinese 8-class), ``owner`` takes ``(unassigned)`` and the attributes ``(none)`` for a
customer without a value. ``consent`` is ``given``, ``withdrawn``, ``none`` (never given) or
``not_given`` (withdrawn or none). ``last_contact_before`` D keeps the customers not contacted
since the start of D (a bare date) or since the instant D, the never-contacted included.

The result is sorted by a stable key: external ref, then customer id (customers without a ref
last).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import msgspec

from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
from crm_es.analytics.rfm import CN8_CELLS, RF_GRID_CELLS
from crm_es.domain.errors import InvalidValue
from crm_es.domain.times import moment
from crm_es.domain.values import Category, Tier
from crm_es.reports.facts.contacts import last_contacts
from crm_es.reports.facts.customer_table import (
    CONSENT_STATES,
    ListedCustomer,
    load_customer_table,
)
from crm_es.reports.facts.customers import tags_as_of
from crm_es.reports.facts.population import LIFECYCLE_STAGES
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

NOT_GIVEN: Final = "not_given"
CONSENT_FILTERS: Final = (*CONSENT_STATES, NOT_GIVEN)

# The closed vocabularies: a value outside them is a mistake, said at once rather than
# answered with an empty list. Free attributes (region, industry, owner, tag) are not checked.
_VOCABULARIES: Final[dict[str, tuple[str, ...]]] = {
    "segment": tuple(sorted({*RF_GRID_CELLS, *CN8_CELLS})),
    "lifecycle": LIFECYCLE_STAGES,
    "category": tuple(c.value for c in Category),
    "tier": tuple(t.value for t in Tier),
    "consent": CONSENT_FILTERS,
    "churn_status": STATUS_NAMES,
}


class ListFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Empty filters select every customer present as of the query."""

    segment: tuple[str, ...] = ()
    lifecycle: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    industry: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    tier: tuple[str, ...] = ()
    consent: tuple[str, ...] = ()
    churn_status: tuple[str, ...] = ()
    last_contact_before: str | None = None

    def check(self) -> None:
        """Raise InvalidValue for a value outside a closed vocabulary."""
        for name, allowed in _VOCABULARIES.items():
            for value in getattr(self, name):
                if value not in allowed:
                    what = name.replace("_", " ")
                    raise InvalidValue(name, value, f"not a {what}; one of {', '.join(allowed)}")


class CustomerSelection(msgspec.Struct, frozen=True):
    present: int  # customers present as of the query, before any filter
    customers: list[ListedCustomer]


def select_customers(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    filters: ListFilters,
    rule: ChurnRule,
) -> CustomerSelection:
    """The customers present as of the query that every filter keeps, sorted by ref and id."""
    filters.check()
    before = moment(
        "last_contact_before", filters.last_contact_before, start_of_day=True, tz=query.tz
    )
    table = load_customer_table(tx, tables, query, rule)
    keep = _matchers(filters)
    if filters.tag:
        tags = tags_as_of(tx, tables, query)
        wanted = set(filters.tag)
        keep.append(lambda c: not wanted.isdisjoint(tags.get(c.customer_id, ())))
    if before is not None:
        contacted = last_contacts(tx, tables, query)
        keep.append(lambda c: _not_contacted_since(contacted.get(c.customer_id), before))
    kept = [c for c in table if all(match(c) for match in keep)]
    kept.sort(key=lambda c: (c.external_ref is None, c.external_ref or "", c.customer_id))
    return CustomerSelection(present=len(table), customers=kept)


def _matchers(filters: ListFilters) -> list[Callable[[ListedCustomer], bool]]:
    """One predicate per filter given (an attribute filter compares the listed value)."""
    keep: list[Callable[[ListedCustomer], bool]] = []
    for name in ("lifecycle", "region", "industry", "category", "owner", "tier", "churn_status"):
        wanted = frozenset(getattr(filters, name))
        if wanted:
            keep.append(_value_in(name, wanted))
    if filters.segment:
        segments = frozenset(filters.segment)
        keep.append(lambda c: c.segment in segments or c.segment_cn in segments)
    if filters.consent:
        states = set(filters.consent)
        if NOT_GIVEN in states:
            states |= {"withdrawn", "none"}
        keep.append(lambda c: c.consent in states)
    return keep


def _value_in(name: str, wanted: frozenset[str]) -> Callable[[ListedCustomer], bool]:
    return lambda c: getattr(c, name) in wanted


def _not_contacted_since(latest: datetime | None, before: datetime) -> bool:
    return latest is None or latest < before
