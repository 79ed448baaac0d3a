"""Contacts and service records as of a query, and the count of both per staff member.

Shared by the contacts and KPI reports, so "contacts per staff member" has one definition: every
contact logged by the cut (occurred_at <= as_of, recorded_at <= known_at) counts once for the
staff member it names, inbound and outbound alike; contacts naming no staff member count under
:data:`NO_STAFF`. Rows come in each customer's business-time order (then stream version), the
order the contacts report pairs inbound contacts with their answers in. The customer lists ask
only when each customer was last contacted (:func:`last_contacts`), by the same cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

import msgspec

from crm_es.domain.times import from_iso
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

NO_STAFF: Final = "(none)"
INBOUND: Final = "inbound"
OUTBOUND: Final = "outbound"


class Contact(msgspec.Struct, frozen=True):
    """One logged contact visible to the query."""

    customer_id: str
    channel: str
    direction: str  # inbound | outbound
    staff: str | None
    day: str  # business day in the store's time zone
    occurred_at: str


class ServiceRecord(msgspec.Struct, frozen=True):
    """One service record visible to the query."""

    customer_id: str
    phase: str  # pre-sale | in-sale | after-sale
    kind: str
    staff: str | None
    day: str


class StaffCounts(msgspec.Struct, kw_only=True):
    """What one staff member logged by the cut."""

    staff: str
    contacts: int = 0
    inbound: int = 0
    outbound: int = 0
    service_records: int = 0


def load_contacts(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[Contact]:
    """Every contact visible to the query, by customer, then business time, then version."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, channel, direction, staff, day, occurred_at "
        f"FROM {tables['contact_facts']} WHERE {cut} ORDER BY customer_id, occurred_at, version",
        params,
    )
    return [
        Contact(str(cid), str(channel), str(direction), staff, str(day), str(occurred))
        for cid, channel, direction, staff, day, occurred in rows
    ]


def load_service_records(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[ServiceRecord]:
    """Every service record visible to the query, by customer, then business time."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, phase, kind, staff, day "
        f"FROM {tables['service_facts']} WHERE {cut} ORDER BY customer_id, occurred_at, version",
        params,
    )
    return [
        ServiceRecord(str(cid), str(phase), str(kind), staff, str(day))
        for cid, phase, kind, staff, day in rows
    ]


def staff_counts(
    contacts: Iterable[Contact], services: Iterable[ServiceRecord] = ()
) -> dict[str, StaffCounts]:
    """Per staff member (sorted; :data:`NO_STAFF` for records naming none): contacts logged,
    inbound and outbound, and service records."""
    counts: dict[str, StaffCounts] = {}

    def of(staff: str | None) -> StaffCounts:
        name = staff or NO_STAFF
        found = counts.get(name)
        if found is None:
            found = counts[name] = StaffCounts(staff=name)
        return found

    for contact in contacts:
        row = of(contact.staff)
        row.contacts += 1
        if contact.direction == INBOUND:
            row.inbound += 1
        else:
            row.outbound += 1
    for service in services:
        of(service.staff).service_records += 1
    return dict(sorted(counts.items()))


def last_contacts(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, datetime]:
    """Business time of each contacted customer's latest contact as of the query, inbound and
    outbound alike (customers never contacted by then are left out)."""
    cut, params = query.cut()
    rows = tx.query(
        f"SELECT customer_id, MAX(occurred_at) FROM {tables['contact_facts']} WHERE {cut} "
        "GROUP BY customer_id",
        params,
    )
    return {str(cid): from_iso(str(latest)) for cid, latest in rows}
