"""Every customer as of a query, one row each, with what a campaign list selects by: owner and
the profile attributes, tier, lifecycle stage, R×F segment (both maps), the churn rule's status,
marketing consent, the day of the last contact and whether the personal data was erased.

The stages, segments and statuses are those of the population
(:mod:`crm_es.reports.facts.population`), so a list of "at_risk" customers is the churn report's
at-risk customers and a list of "Champions" the segments report's. Attributes and consent are
the values as of the query as known at its knowledge time; erasure is the one exception: it is
final, whatever the date asked about (the personal data is gone, so nobody can be contacted).

Holds no personal data: tags are read only when a list filters by them
(:func:`tags_as_of`), names and contact details never.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
from crm_es.analytics.rfm import CN8_CELLS, RF_GRID_CELLS
from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.facts.contacts import last_contacts
from crm_es.reports.facts.customers import UNASSIGNED, attributes_as_of
from crm_es.reports.facts.population import LIFECYCLE_STAGES, load_population
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# The attributes of the profile a list filters and a summary counts by (read-model names).
PROFILE_ATTRIBUTES: Final = ("category", "region", "industry", "company_size", "income_band")
# What a customer with no value of an attribute is listed and counted under.
NO_VALUE: Final = "(none)"

# Marketing consent as of a date: given; withdrawn after having been given; never given (no
# consent recorded, or only a refusal).
CONSENT_STATES: Final = ("given", "withdrawn", "none")


class ListedCustomer(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str  # UNASSIGNED when none
    category: str
    region: str
    industry: str
    company_size: str
    income_band: str
    tier: str
    lifecycle: str
    segment: str | None  # the R×F grid's; None without a purchase day
    segment_cn: str | None  # the Chinese 8-class map's
    churn_status: str  # one of STATUS_NAMES
    consent: str  # one of CONSENT_STATES
    last_contact_on: str | None  # local day of the latest contact logged; None: never
    erased: bool


def load_customer_table(
    tx: Tx, tables: dict[str, str], query: ReportQuery, rule: ChurnRule
) -> list[ListedCustomer]:
    """The customers present as of the query, in id order."""
    pop = load_population(tx, tables, query, TIER_CURRENCY, rule)
    customers = pop.customers
    n = len(customers.ids)
    segment: list[str | None] = [None] * n
    segment_cn: list[str | None] = [None] * n
    grid, cn = pop.scores.grid_index().tolist(), pop.scores.cn_index().tolist()
    for i, g, c in zip(pop.buyers.tolist(), grid, cn, strict=True):
        segment[i], segment_cn[i] = RF_GRID_CELLS[g], CN8_CELLS[c]
    attrs = attributes_as_of(tx, tables, query, PROFILE_ATTRIBUTES)
    consent = consent_as_of(tx, tables, query)
    erased = erased_customers(tx, tables)
    contacted = last_contacts(tx, tables, query)
    stages, statuses = pop.stages.tolist(), pop.statuses.tolist()
    rows = []
    for i, cid in enumerate(customers.ids):
        values = {name: attrs[name].get(cid) or NO_VALUE for name in PROFILE_ATTRIBUTES}
        rows.append(
            ListedCustomer(
                customer_id=cid,
                external_ref=customers.external_refs[i],
                owner=customers.owners[i] or UNASSIGNED,
                **values,
                tier=customers.tiers[i],
                lifecycle=LIFECYCLE_STAGES[stages[i]],
                segment=segment[i],
                segment_cn=segment_cn[i],
                churn_status=STATUS_NAMES[statuses[i]],
                consent=consent.get(cid, "none"),
                last_contact_on=_day(contacted.get(cid), query),
                erased=cid in erased,
            )
        )
    return rows


def _day(at: datetime | None, query: ReportQuery) -> str | None:
    return None if at is None else at.astimezone(query.tz).date().isoformat()


def consent_as_of(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """Each customer's marketing consent as of the query, for customers with a consent fact:
    "given", or "withdrawn" when a refusal follows a consent given before; a refusal never
    preceded by a consent is "none", as no consent at all."""
    rows = tx.query(
        f"SELECT customer_id, value FROM {tables['attribute_facts']} WHERE attribute = ? "
        "AND occurred_at <= ? AND recorded_at <= ? ORDER BY customer_id, occurred_at, version",
        ("consent", query.as_of_iso, query.known_at_iso),
    )
    state: dict[str, str] = {}
    for cid, value in rows:
        key = str(cid)
        if value == "given":
            state[key] = "given"
        elif state.get(key) in ("given", "withdrawn"):
            state[key] = "withdrawn"
        else:
            state[key] = "none"
    return state


def erased_customers(tx: Tx, tables: dict[str, str]) -> set[str]:
    """The customers whose personal data was erased (at any time: an erasure is final)."""
    rows = tx.query(f"SELECT customer_id FROM {tables['profile']} WHERE erased = 1")
    return {str(r[0]) for r in rows}
