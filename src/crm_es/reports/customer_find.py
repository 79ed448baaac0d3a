"""客户识别: the customers whose phone or email, as of a query, is the one asked for, and the
groups of customers sharing a phone or an email (likely registered twice).

Both read the ``contact_index`` read model, which holds keyed hashes only
(:mod:`crm_es.projections.models.contact_index`): the value asked for is normalised and hashed
with the same key, and the hash is looked up. A customer's phone as of D known at T is its
latest fact (by business time, then stream version) that occurred by D and was recorded by T,
as every attribute is (:mod:`crm_es.reports.facts.customers`), so a changed phone stops matching
the old number from its change on and a query for (D, T) answers the same forever. Erased
customers are not in the index at all.

Neither result holds personal data: ids, refs, owner and category; never the value asked for
nor a hash. Names are the service's to hand out under the policy (``--with-contact-details``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import msgspec

from crm_es.domain.contact_keys import ContactKind
from crm_es.domain.policy import in_scope
from crm_es.domain.principals import Principal
from crm_es.reports.facts.customers import UNASSIGNED
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

NO_CATEGORY: Final = "(none)"
_CHUNK: Final = 500  # ids per IN (…) list: far below either database's limit on parameters


class FoundCustomer(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str  # UNASSIGNED when none
    category: str  # NO_CATEGORY when none


class CustomerMatches(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    by: ContactKind  # what was asked for (its value is not repeated here)
    total: int
    customers: list[FoundCustomer]  # by external ref


class DuplicateGroup(msgspec.Struct, frozen=True, kw_only=True):
    group: int  # 1 = the largest group
    by: ContactKind  # what its customers share
    size: int
    customers: list[FoundCustomer]  # by external ref


class DuplicateCustomers(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    groups: list[DuplicateGroup]
    customers: int  # distinct customers in any group (one may share a phone and an email)


def _current(
    tx: Tx, tables: dict[str, str], query: ReportQuery, where: str, params: Sequence[Any]
) -> list[tuple[str, str, str]]:
    """(customer, kind, hash) of each customer's value as of the query, of the facts ``where``
    selects; cleared values left out."""
    rows = tx.query(
        "SELECT customer_id, kind, hash FROM (SELECT customer_id, kind, hash, "
        "ROW_NUMBER() OVER (PARTITION BY customer_id, kind "
        "ORDER BY occurred_at DESC, version DESC) AS latest "
        f"FROM {tables['contact_hashes']} WHERE occurred_at <= ? AND recorded_at <= ?{where}) "
        "AS facts WHERE latest = 1 AND hash IS NOT NULL",
        (query.as_of_iso, query.known_at_iso, *params),
    )
    return [(str(cid), str(kind), str(digest)) for cid, kind, digest in rows]


def _described(
    tx: Tx, tables: dict[str, str], query: ReportQuery, ids: Sequence[str]
) -> dict[str, FoundCustomer]:
    """Ref, and owner and category as of the query, of each of ``ids``."""
    refs: dict[str, str | None] = {}
    values: dict[tuple[str, str], tuple[str, int, str | None]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        marks = ", ".join("?" * len(chunk))
        for cid, ref in tx.query(
            f"SELECT customer_id, external_ref FROM {tables['profile']} "
            f"WHERE customer_id IN ({marks})",
            chunk,
        ):
            refs[str(cid)] = ref
        facts = tx.query(
            f"SELECT customer_id, attribute, value, occurred_at, version "
            f"FROM {tables['attribute_facts']} WHERE attribute IN ('owner', 'category') "
            f"AND occurred_at <= ? AND recorded_at <= ? AND customer_id IN ({marks})",
            (query.as_of_iso, query.known_at_iso, *chunk),
        )
        for cid, name, value, occurred, version in facts:
            key, seen = (str(cid), str(name)), values.get((str(cid), str(name)))
            if seen is None or (str(occurred), int(version)) > (seen[0], seen[1]):
                values[key] = (str(occurred), int(version), value)

    def latest(cid: str, name: str) -> str | None:
        found = values.get((cid, name))
        return None if found is None else found[2]

    return {
        cid: FoundCustomer(
            customer_id=cid,
            external_ref=refs.get(cid),
            owner=latest(cid, "owner") or UNASSIGNED,
            category=latest(cid, "category") or NO_CATEGORY,
        )
        for cid in ids
    }


def _by_ref(customer: FoundCustomer) -> tuple[str, str]:
    return (customer.external_ref or "", customer.customer_id)


def find_customers(
    tx: Tx, tables: dict[str, str], query: ReportQuery, kind: ContactKind, digest: str
) -> CustomerMatches:
    """The customers whose ``kind`` as of the query hashes to ``digest``."""
    # Only customers who ever held the value (the index on kind and hash finds them) are read.
    where = (
        f" AND customer_id IN (SELECT customer_id FROM {tables['contact_hashes']} "
        "WHERE kind = ? AND hash = ?) AND kind = ?"
    )
    current = _current(tx, tables, query, where, (kind, digest, kind))
    ids = sorted({cid for cid, _, held in current if held == digest})
    found = sorted(_described(tx, tables, query, ids).values(), key=_by_ref)
    return CustomerMatches(
        as_of=query.as_of_iso, known_at=query.known_at_iso, by=kind, total=len(found),
        customers=found,
    )  # fmt: skip


def duplicate_customers(tx: Tx, tables: dict[str, str], query: ReportQuery) -> DuplicateCustomers:
    """Groups of two or more customers whose phone, or whose email, is the same as of the
    query: largest first, then phones before emails, then by the first ref."""
    shared: dict[tuple[str, str], list[str]] = {}
    for cid, kind, digest in _current(tx, tables, query, "", ()):
        shared.setdefault((kind, digest), []).append(cid)
    groups = {key: sorted(set(ids)) for key, ids in shared.items() if len(set(ids)) > 1}
    ids = sorted({cid for members in groups.values() for cid in members})
    described = _described(tx, tables, query, ids)
    ordered = sorted(
        (
            (kind, sorted((described[cid] for cid in members), key=_by_ref))
            for (kind, _), members in groups.items()
        ),
        key=lambda g: (-len(g[1]), g[0] != "phone", _by_ref(g[1][0])),
    )
    return DuplicateCustomers(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        groups=[
            DuplicateGroup(
                group=n, by=cast(ContactKind, kind), size=len(members), customers=members
            )
            for n, (kind, members) in enumerate(ordered, start=1)
        ],
        customers=len(ids),
    )


def match_rows(report: CustomerMatches) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]


def duplicate_rows(report: DuplicateCustomers) -> list[dict[str, object]]:
    """One row per customer of each group, the group's number, what it shares and its size."""
    return [
        {"group": g.group, "by": g.by, "size": g.size, **msgspec.structs.asdict(c)}
        for g in report.groups
        for c in g.customers
    ]


def worked_on_by(found: CustomerMatches, principal: Principal) -> CustomerMatches:
    """The matches among the customers ``principal`` works on (its own, its team's, the pool;
    owners as of the query): the others are left out unseen, total included."""
    mine = [
        c for c in found.customers
        if in_scope(principal, None if c.owner == UNASSIGNED else c.owner)
    ]  # fmt: skip
    return msgspec.structs.replace(found, total=len(mine), customers=mine)
