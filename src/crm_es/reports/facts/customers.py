"""Who the customers were as of a query: the ones that existed, their attributes and tags as of
the date as known at the time, and their tier by the rolling 12-month rule.

The ``customers`` read model keeps every attribute change as a fact with both times; a value
"as of D known at T" is the one of the latest fact (by business time, then stream version) that
occurred by D and was recorded by T, so a report for (D, T) finds the same values forever. A
customer exists from its earliest event (a back-dated purchase recorded after the registration
moves it earlier). The tier is the one definition of :func:`crm_es.domain.values.tier_for_spend`
over the rolling 12-month net spend of :meth:`crm_es.domain.customer.Customer.rolling_spend`:
orders that occurred in the 365 days up to D, less their refunds by D.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from crm_es.domain.customer import ROLLING_TIER_WINDOW
from crm_es.domain.times import iso
from crm_es.domain.values import TIER_CURRENCY, tier_for_spend
from crm_es.reports.facts.column_queries import customer_columns
from crm_es.reports.facts.fact_columns import fact_columns, present_codes
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

UNASSIGNED = "(unassigned)"


def present_customers(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[str]:
    """Ids of the customers that existed as of the query, in id order."""
    columns = fact_columns(tx, tables)
    if columns is not None:
        codes = present_codes(columns, query.as_of_iso, query.known_at_iso)
        return [columns.ids[c] for c in codes.tolist()]
    rows = tx.query(
        f"SELECT DISTINCT customer_id FROM {tables['presence']} "
        "WHERE occurred_at <= ? AND recorded_at <= ? ORDER BY customer_id",
        (query.as_of_iso, query.known_at_iso),
    )
    return [str(r[0]) for r in rows]


def external_refs(tx: Tx, tables: dict[str, str]) -> dict[str, str | None]:
    """Each customer's external ref (it never changes)."""
    rows = tx.query(f"SELECT customer_id, external_ref FROM {tables['profile']}")
    return {str(cid): ref for cid, ref in rows}


def attributes_as_of(
    tx: Tx, tables: dict[str, str], query: ReportQuery, names: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """attribute -> customer -> its value as of the query (customers without one left out)."""
    found: dict[str, dict[str, str | None]] = {name: {} for name in names}
    marks = ", ".join("?" * len(names))
    rows = tx.query(
        "SELECT customer_id, attribute, value FROM (SELECT customer_id, attribute, value, "
        "ROW_NUMBER() OVER (PARTITION BY customer_id, attribute "
        "ORDER BY occurred_at DESC, version DESC) AS latest "
        f"FROM {tables['attribute_facts']} WHERE occurred_at <= ? AND recorded_at <= ? "
        f"AND attribute IN ({marks})) AS facts WHERE latest = 1",
        (query.as_of_iso, query.known_at_iso, *names),
    )
    for cid, name, value in rows:
        found[str(name)][str(cid)] = value
    return found


class CustomerRef(msgspec.Struct, frozen=True):
    external_ref: str | None
    owner: str  # UNASSIGNED when the customer had no owner


def load_refs(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, CustomerRef]:
    """External ref and owner as of the query of every customer (facts about a customer whose
    registration is later still find its ref)."""
    owners = owners_as_of(tx, tables, query)
    return {
        cid: CustomerRef(ref, owners.get(cid, UNASSIGNED))
        for cid, ref in external_refs(tx, tables).items()
    }


def owner_of(refs: dict[str, CustomerRef], customer_id: str) -> str:
    ref = refs.get(customer_id)
    return ref.owner if ref is not None else UNASSIGNED


def owners_as_of(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """Each customer's owner as of the query (:data:`UNASSIGNED` where none)."""
    owners = attributes_as_of(tx, tables, query, ["owner"])["owner"]
    return {cid: owner or UNASSIGNED for cid, owner in owners.items()}


def tags_as_of(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, list[str]]:
    """Each customer's tags as of the query, sorted."""
    rows = tx.query(
        f"SELECT customer_id, tag, added FROM {tables['tag_facts']} "
        "WHERE occurred_at <= ? AND recorded_at <= ? ORDER BY customer_id, occurred_at, version",
        (query.as_of_iso, query.known_at_iso),
    )
    tags: dict[str, set[str]] = {}
    for cid, tag, added in rows:
        held = tags.setdefault(str(cid), set())
        if added:
            held.add(str(tag))
        else:
            held.discard(str(tag))
    return {cid: sorted(held) for cid, held in tags.items() if held}


def tiers_as_of(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """Each customer's tier as of the query (customers without spend in the window left out:
    their tier is the lowest)."""
    start = iso(query.as_of - ROLLING_TIER_WINDOW)
    cut = (query.as_of_iso, query.known_at_iso)
    window = "p.occurred_at > ? AND p.occurred_at <= ? AND p.recorded_at <= ?"
    spend = {
        str(cid): int(total)
        for cid, total in tx.query(
            f"SELECT p.customer_id, SUM(p.amount) FROM {tables['purchases']} AS p "
            f"WHERE p.currency = ? AND {window} GROUP BY p.customer_id",
            (TIER_CURRENCY, start, *cut),
        )
    }
    for cid, refunded in tx.query(
        f"SELECT r.customer_id, SUM(r.amount) FROM {tables['refunds']} AS r "
        f"JOIN {tables['purchases']} AS p ON p.customer_id = r.customer_id "
        f"AND p.order_id = r.order_id WHERE r.currency = ? AND r.occurred_at <= ? "
        f"AND r.recorded_at <= ? AND {window} GROUP BY r.customer_id",
        (TIER_CURRENCY, *cut, start, *cut),
    ):
        spend[str(cid)] = spend.get(str(cid), 0) - int(refunded)
    return {cid: str(tier_for_spend(total)) for cid, total in spend.items()}


def customer_rows(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> tuple[list[str], list[str | None], list[str | None], list[str | None], list[str]]:
    """(ids, external refs, owners, regions, tiers) of the customers present as of the query,
    in id order: the columns every per-customer report starts from."""
    columns = fact_columns(tx, tables)
    if columns is not None:  # the same columns from the read model's copy in memory
        return customer_columns(columns, tx, tables, query)
    ids = present_customers(tx, tables, query)
    refs = external_refs(tx, tables)
    attrs = attributes_as_of(tx, tables, query, ["owner", "region"])
    tiers = tiers_as_of(tx, tables, query)
    lowest = str(tier_for_spend(0))
    return (
        ids,
        [refs.get(cid) for cid in ids],
        [attrs["owner"].get(cid) for cid in ids],
        [attrs["region"].get(cid) for cid in ids],
        [tiers.get(cid, lowest) for cid in ids],
    )
