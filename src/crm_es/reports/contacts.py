"""The contacts report: last contact per customer and channel, first response times, customers
nobody has contacted for N days, service records by phase and kind, and contacts per staff member.

Everything is as of the query: only contacts and service records that occurred by ``as_of`` and
were recorded by ``known_at`` count, owners are those as of the query, and "today" is the
reference date (the day of ``as_of`` in the store's time zone), so a report for (D, T) is the
same forever.

First response (:data:`RESPONSE_RULE`): a customer's contacts are put in business-time order
(``occurred_at``, then stream version). Every inbound contact is answered by the first outbound
contact of the same customer after it in that order, on **any** channel (a call back answers an
e-mail); its response time is the business time between the two, in hours. Several inbound
contacts before one answer are each answered by it, each timed from its own moment. An inbound
contact with no later outbound contact by the cut is unanswered: counted, never timed. Times are
grouped by the inbound contact's channel (where the customer reached us) and by the staff member
of the answering contact (who responded; unanswered ones have no responder, so staff rows count
none). Median and p90 interpolate linearly (numpy's default), as the complaint times do.

Idle customers: a customer present as of the query is idle when the days from its last contact
(inbound or outbound, any channel; service records do not count) to the reference date, in
calendar days of the store's time zone, reach ``idle_days``. A customer never contacted counts
from its registration (or, if the registration is outside the cut, from its earliest event).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, tzinfo
from typing import Final, TypeVar

import msgspec

from crm_es.analytics.satisfaction import median, percentile
from crm_es.domain.errors import CrmError, InvalidValue
from crm_es.domain.times import from_iso, local_text
from crm_es.domain.values import ServicePhase
from crm_es.reports.facts.contacts import (
    INBOUND,
    NO_STAFF,
    OUTBOUND,
    Contact,
    load_contacts,
    load_service_records,
    staff_counts,
)
from crm_es.reports.facts.customers import UNASSIGNED, load_refs, owner_of, present_customers
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

DEFAULT_IDLE_DAYS: Final = 90
MAX_IDLE_DAYS: Final = 36500  # a century: longer is a typo
RESPONSE_RULE: Final = (
    "an inbound contact is answered by the same customer's next outbound contact on any "
    "channel, in business-time order (then stream version); response hours = business time "
    "between them; by the inbound's channel and the answering contact's staff"
)
T = TypeVar("T")
PHASES: Final = tuple(str(p) for p in ServicePhase)
SECTIONS: Final = ("idle", "idle_by_owner", "last_contact", "response", "service", "staff")
# Table and CSV columns, the most telling first (a terminal shows those that fit); a table
# holds only the columns of the sections it lists.
TABLE_COLUMNS: Final = (
    "section", "external_ref", "owner", "days_since", "last_contact_at", "never_contacted",
    "channel", "staff", "direction", "answered", "unanswered", "median_hours", "p90_hours",
    "phase", "kind", "records", "customers", "idle", "contacts", "inbound", "outbound",
    "service_records", "idle_since", "customer_id",
)  # fmt: skip


class LastContact(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str
    channel: str
    direction: str
    staff: str | None
    last_contact_at: str  # business time in the store's time zone
    days_since: int  # calendar days from that contact to the reference date


class ResponseTimes(msgspec.Struct, frozen=True, kw_only=True):
    channel: str | None  # the inbound contacts' channel (None: every channel)
    staff: str | None  # who answered (None: everyone)
    answered: int
    unanswered: int | None  # None on staff rows: an unanswered contact has no responder
    median_hours: float | None
    p90_hours: float | None


class IdleCustomer(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str
    last_contact_at: str | None  # None: never contacted
    idle_since: str  # the last contact, or the registration of a customer never contacted
    days_since: int
    never_contacted: bool


class IdleOwner(msgspec.Struct, frozen=True, kw_only=True):
    owner: str
    customers: int  # present as of the cut
    idle: int  # of them, not contacted for idle_days or more (never contacted included)
    never_contacted: int


class ServiceCount(msgspec.Struct, frozen=True, kw_only=True):
    phase: str
    kind: str
    records: int
    customers: int  # distinct customers served


class StaffContacts(msgspec.Struct, frozen=True, kw_only=True):
    staff: str  # "(none)" for records naming no staff member
    contacts: int
    inbound: int
    outbound: int
    service_records: int


class ContactsReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    idle_days: int
    response_rule: str
    contacts: int  # logged by the cut
    service_records: int
    service_phases: dict[str, int]  # pre-sale / in-sale / after-sale -> records
    response_times: list[ResponseTimes]  # overall, then by channel, then by staff
    idle_by_owner: list[IdleOwner]
    idle_customers: list[IdleCustomer]  # longest idle first
    last_contacts: list[LastContact]  # by customer, then channel
    services: list[ServiceCount]  # by phase (pre, in, after), then kind
    staff: list[StaffContacts]


def _hours(start: str, end: str) -> float:
    return (from_iso(end) - from_iso(start)).total_seconds() / 3600


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def first_responses(contacts: Iterable[Contact]) -> list[tuple[Contact, Contact | None]]:
    """Every inbound contact with the outbound contact answering it (None: unanswered by the
    cut). ``contacts`` come by customer, then business time, then version."""
    pairs: list[tuple[Contact, Contact | None]] = []
    waiting: list[int] = []  # indexes in ``pairs`` of the current customer's unanswered inbound
    customer = None
    for contact in contacts:
        if contact.customer_id != customer:
            customer, waiting = contact.customer_id, []
        if contact.direction == INBOUND:
            waiting.append(len(pairs))
            pairs.append((contact, None))
        elif contact.direction == OUTBOUND:
            for i in waiting:
                pairs[i] = (pairs[i][0], contact)
            waiting = []
    return pairs


def _times(channel: str | None, staff: str | None, answered: list[float],
           unanswered: int | None) -> ResponseTimes:  # fmt: skip
    return ResponseTimes(
        channel=channel,
        staff=staff,
        answered=len(answered),
        unanswered=unanswered,
        median_hours=_round(median(answered)),
        p90_hours=_round(percentile(answered, 90.0)),
    )


def response_times(contacts: Iterable[Contact]) -> list[ResponseTimes]:
    """Overall, per inbound channel and per answering staff member (each sorted)."""
    pairs = first_responses(contacts)
    by_channel: dict[str, list[float]] = {}
    waiting: Counter[str] = Counter()
    by_staff: dict[str, list[float]] = {}
    for inbound, answer in pairs:
        by_channel.setdefault(inbound.channel, [])
        if answer is None:
            waiting[inbound.channel] += 1
            continue
        hours = _hours(inbound.occurred_at, answer.occurred_at)
        by_channel[inbound.channel].append(hours)
        by_staff.setdefault(answer.staff or NO_STAFF, []).append(hours)
    every = [h for hours in by_channel.values() for h in hours]
    return [
        _times(None, None, every, sum(waiting.values())),
        *(_times(c, None, by_channel[c], waiting[c]) for c in sorted(by_channel)),
        *(_times(None, s, by_staff[s], None) for s in sorted(by_staff)),
    ]


def _registrations(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, str]:
    """Each customer's registration time within the cut, else its earliest event's."""
    cut, params = query.cut()
    earliest = {
        str(cid): str(at)
        for cid, at in tx.query(
            f"SELECT customer_id, MIN(occurred_at) FROM {tables['presence']} WHERE {cut} "
            "GROUP BY customer_id",
            params,
        )
    }
    for cid, at in tx.query(
        f"SELECT customer_id, registered_at FROM {tables['profile']} "
        "WHERE registered_at <= ? AND registered_recorded_at <= ?",
        params,
    ):
        if str(cid) in earliest:
            earliest[str(cid)] = str(at)
    return earliest


def _day(occurred_at: str, tz: tzinfo) -> date:
    return from_iso(occurred_at).astimezone(tz).date()


def contacts_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    idle_days: int = DEFAULT_IDLE_DAYS,
    section: str | None = None,
) -> ContactsReport:
    """The report; ``section`` (one of :data:`SECTIONS`) lists only that section's items,
    while the totals stay those of everything in the cut."""
    if not 1 <= idle_days <= MAX_IDLE_DAYS:  # as --idle-days takes: 0 or less means nothing
        raise InvalidValue("idle_days", idle_days, f"must be 1 to {MAX_IDLE_DAYS} days")
    if section is not None and section not in SECTIONS:
        raise CrmError(f"section {section!r}: not a section of this report; one of: "
                       + ", ".join(SECTIONS))  # fmt: skip

    def listed(name: str, items: list[T]) -> list[T]:
        return items if section in (None, name) else []

    refs = load_refs(tx, tables, query)
    today, tz = query.reference_date, query.tz
    contacts = load_contacts(tx, tables, query)
    services = load_service_records(tx, tables, query)

    latest: dict[tuple[str, str], Contact] = {}  # rows come in business-time order
    last_any: dict[str, Contact] = {}
    for contact in contacts:
        latest[(contact.customer_id, contact.channel)] = contact
        last_any[contact.customer_id] = contact
    last_contacts = [
        LastContact(
            customer_id=cid,
            external_ref=refs[cid].external_ref if cid in refs else None,
            owner=owner_of(refs, cid),
            channel=channel,
            direction=c.direction,
            staff=c.staff,
            last_contact_at=local_text(c.occurred_at, tz),
            days_since=(today - date.fromisoformat(c.day)).days,
        )
        for (cid, channel), c in sorted(latest.items())
    ]

    registered = _registrations(tx, tables, query)
    idle_customers: list[IdleCustomer] = []
    owners: dict[str, list[int]] = {}  # owner -> [customers, idle, never contacted]
    for cid in present_customers(tx, tables, query):
        owner = owner_of(refs, cid)
        counts = owners.setdefault(owner, [0, 0, 0])
        counts[0] += 1
        last = last_any.get(cid)
        since = last.occurred_at if last else registered[cid]
        days = (today - (date.fromisoformat(last.day) if last else _day(since, tz))).days
        if days < idle_days:
            continue
        counts[1] += 1
        counts[2] += last is None
        idle_customers.append(
            IdleCustomer(
                customer_id=cid,
                external_ref=refs[cid].external_ref if cid in refs else None,
                owner=owner,
                last_contact_at=local_text(last.occurred_at, tz) if last else None,
                idle_since=local_text(since, tz),
                days_since=days,
                never_contacted=last is None,
            )
        )
    idle_customers.sort(key=lambda i: (-i.days_since, i.customer_id))

    served: dict[tuple[str, str], set[str]] = {}
    records: Counter[tuple[str, str]] = Counter()
    for service in services:
        records[(service.phase, service.kind)] += 1
        served.setdefault((service.phase, service.kind), set()).add(service.customer_id)

    def phase_order(key: tuple[str, str]) -> tuple[int, str]:
        return (PHASES.index(key[0]) if key[0] in PHASES else len(PHASES), key[1])

    return ContactsReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=today.isoformat(),
        idle_days=idle_days,
        response_rule=RESPONSE_RULE,
        contacts=len(contacts),
        service_records=len(services),
        service_phases={p: sum(n for (ph, _), n in records.items() if ph == p) for p in PHASES},
        response_times=listed("response", response_times(contacts)),
        idle_by_owner=listed(
            "idle_by_owner",
            [
                IdleOwner(owner=o, customers=n[0], idle=n[1], never_contacted=n[2])
                for o, n in sorted(
                    owners.items(), key=lambda item: (item[0] == UNASSIGNED, item[0])
                )
            ],
        ),
        idle_customers=listed("idle", idle_customers),
        last_contacts=listed("last_contact", last_contacts),
        services=listed(
            "service",
            [
                ServiceCount(phase=p, kind=k, records=n, customers=len(served[(p, k)]))
                for (p, k), n in sorted(records.items(), key=lambda item: phase_order(item[0]))
            ],
        ),
        staff=listed(
            "staff",
            [
                StaffContacts(**msgspec.structs.asdict(s))
                for s in staff_counts(contacts, services).values()
            ],
        ),
    )


def table_rows(report: ContactsReport) -> list[dict[str, object]]:
    """One row per item, with a ``section`` column; every row has the same columns: those of
    the sections listed (a customer row's ``customer_id`` is None on the other rows)."""
    items_by_section: list[list[msgspec.Struct]] = [
        list(report.idle_customers),
        list(report.idle_by_owner),
        list(report.last_contacts),
        list(report.response_times),
        list(report.services),
        list(report.staff),
    ]
    used = {"section"}
    for items in items_by_section:
        used.update(items[0].__struct_fields__ if items else ())
    columns = [c for c in TABLE_COLUMNS if c in used]
    rows: list[dict[str, object]] = []
    for section, items in zip(SECTIONS, items_by_section, strict=True):
        for item in items:
            row: dict[str, object] = dict.fromkeys(columns)
            row.update(msgspec.structs.asdict(item))
            row["section"] = section
            rows.append(row)
    return rows
