"""The contacts report end to end on SQLite and PostgreSQL, against figures worked out by hand.

Five customers (store in UTC), as of 2026-03-31 with idle days 30:

    A staff:li   in phone 01-05 09:00, in email 01-05 10:00, out phone 01-05 12:00 (li)
                 -> 3 h (phone), 2 h (email); in wechat 01-10 08:00, out email 01-11 08:00
                 (wang) -> 24 h (wechat); services pre-sale consultation (li), after-sale
                 maintenance (wang)
    B staff:li   in phone 01-03 10:00, out phone 01-03 11:30 (li) -> 1.5 h; in phone 02-01
                 09:00 unanswered; services pre-sale demo and consultation (li)
    C staff:wang in chat 01-07 10:00, out chat 01-07 16:00 (wang) -> 6 h; out phone 03-20 (wang)
    D no owner   registered 01-01, never contacted
    E staff:wang registered 03-15, never contacted

Answered hours 1.5, 2, 3, 6, 24: median 3, p90 (linear, position 0.9 x 4 = 3.6) 6 + 0.6 x 18
= 16.8. Phone 1.5, 3: median 2.25, p90 1.5 + 0.9 x 1.5 = 2.85. Answered by li 1.5, 2, 3: median
2, p90 2 + 0.8 x 1 = 2.8; by wang 6, 24: median 15, p90 6 + 0.9 x 18 = 22.2. Days to 03-31:
from 01-01 89, 01-05 85, 01-07 83, 01-10 80, 01-11 79, 02-01 58, 03-15 16, 03-20 11.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.domain.errors import CrmError
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports import contacts
from crm_es.reports.api import Reports
from crm_es.reports.contacts import TABLE_COLUMNS, ContactsReport, first_responses, table_rows
from crm_es.reports.facts.contacts import Contact
from tests.helpers.projections import dump
from tests.helpers.stores import module_store

AS_OF = "2026-03-31"


def at(day: str, clock: str = "09:00") -> str:
    return f"2026-{day}T{clock}:00+00:00"


def _contact(crm: CRM, ref: str, when: str, channel: str, direction: str,
             staff: str | None = None) -> None:  # fmt: skip
    crm.log_contact(customer=ref, channel=channel, direction=direction, staff=staff,
                    summary="回访 — free text never copied", outcome="ok", occurred_at=when)  # fmt: skip


def build(crm: CRM) -> None:
    for ref, owner, day in [("A", "staff:li", "01-01"), ("B", "staff:li", "01-01"),
                            ("C", "staff:wang", "01-01"), ("D", None, "01-01"),
                            ("E", "staff:wang", "03-15")]:  # fmt: skip
        crm.register_customer(external_ref=ref, owner=owner, occurred_at=at(day))
    _contact(crm, "A", at("01-05"), "phone", "inbound")
    _contact(crm, "A", at("01-05", "10:00"), "email", "inbound")
    _contact(crm, "A", at("01-05", "12:00"), "phone", "outbound", "staff:li")
    _contact(crm, "A", at("01-10", "08:00"), "wechat", "inbound")
    _contact(crm, "A", at("01-11", "08:00"), "email", "outbound", "staff:wang")
    # B's answer is logged before its question: business time, not recording order, pairs them
    _contact(crm, "B", at("01-03", "11:30"), "phone", "outbound", "staff:li")
    _contact(crm, "B", at("01-03", "10:00"), "phone", "inbound")
    _contact(crm, "B", at("02-01"), "phone", "inbound")
    _contact(crm, "C", at("01-07", "10:00"), "chat", "inbound")
    _contact(crm, "C", at("01-07", "16:00"), "chat", "outbound", "staff:wang")
    _contact(crm, "C", at("03-20", "10:00"), "phone", "outbound", "staff:wang")
    for ref, day, phase, kind, staff in [
        ("A", "01-06", "pre-sale", "consultation", "staff:li"),
        ("A", "01-20", "after-sale", "maintenance", "staff:wang"),
        ("B", "01-04", "pre-sale", "demo", "staff:li"),
        ("B", "01-04", "pre-sale", "consultation", "staff:li"),
    ]:
        crm.record_service(customer=ref, phase=phase, kind=kind, staff=staff, occurred_at=at(day))


class Scenario(msgspec.Struct):
    url: str
    known_at: str  # after the scenario, before the back-dated contacts
    report: ContactsReport  # as of AS_OF, known at known_at, idle days 30
    past: ContactsReport  # as of 2026-01-05, known at known_at
    kpi: dict[str, int]  # owner -> contacts
    report_later: ContactsReport  # the (AS_OF, known_at) report asked again afterwards
    past_later: ContactsReport
    now: ContactsReport  # as of AS_OF, known now: the back-dated contacts count


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_store(request, tmp_path_factory) as url, CRM(url) as crm:
        build(crm)
        known_at = datetime.now(UTC).isoformat()
        with Reports(crm) as reports:
            report = reports.contacts(as_of=AS_OF, known_at=known_at, idle_days=30)
            past = reports.contacts(as_of="2026-01-05", known_at=known_at, idle_days=30)
            kpi = {o.owner: o.contacts for o in reports.kpi(as_of=AS_OF, known_at=known_at).owners}
        # Recorded after known_at, back-dated before AS_OF: B's question answered, D contacted.
        _contact(crm, "B", at("02-01", "11:00"), "email", "outbound", "staff:li")
        _contact(crm, "D", at("01-02"), "visit", "outbound", "staff:wang")
        with Reports(crm) as reports:
            yield Scenario(
                url, known_at, report, past, kpi,
                report_later=reports.contacts(as_of=AS_OF, known_at=known_at, idle_days=30),
                past_later=reports.contacts(as_of="2026-01-05", known_at=known_at, idle_days=30),
                now=reports.contacts(as_of=AS_OF, idle_days=30),
            )  # fmt: skip


def _refs(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(msgspec.structs.asdict(r).values())[1:] for r in rows]  # without customer_id


def test_first_response_times_by_channel_and_staff_match_the_hand_computed_vector(
    scenario: Scenario,
) -> None:
    times = [
        (t.channel, t.staff, t.answered, t.unanswered, t.median_hours, t.p90_hours)
        for t in scenario.report.response_times
    ]
    assert times == [
        (None, None, 5, 1, 3.0, 16.8),
        ("chat", None, 1, 0, 6.0, 6.0),
        ("email", None, 1, 0, 2.0, 2.0),
        ("phone", None, 2, 1, 2.25, 2.85),
        ("wechat", None, 1, 0, 24.0, 24.0),
        (None, "staff:li", 3, None, 2.0, 2.8),
        (None, "staff:wang", 2, None, 15.0, 22.2),
    ]


def test_idle_customers_include_the_never_contacted_counted_from_registration(
    scenario: Scenario,
) -> None:
    report = scenario.report
    assert report.reference_date == "2026-03-31" and report.idle_days == 30
    assert _refs(report.idle_customers) == [
        ("D", "(unassigned)", None, "2026-01-01T09:00:00+00:00", 89, True),
        ("A", "staff:li", "2026-01-11T08:00:00+00:00", "2026-01-11T08:00:00+00:00", 79, False),
        ("B", "staff:li", "2026-02-01T09:00:00+00:00", "2026-02-01T09:00:00+00:00", 58, False),
    ]  # C (11 days) and E (registered 16 days ago) are not idle
    assert [tuple(msgspec.structs.asdict(o).values()) for o in report.idle_by_owner] == [
        ("staff:li", 2, 2, 0),
        ("staff:wang", 2, 0, 0),
        ("(unassigned)", 1, 1, 1),
    ]


def test_the_last_contact_per_customer_and_channel_is_the_latest_in_business_time(
    scenario: Scenario,
) -> None:
    last = {(r.external_ref, r.channel): (r.direction, r.staff, r.last_contact_at, r.days_since)
            for r in scenario.report.last_contacts}  # fmt: skip
    assert last == {
        ("A", "email"): ("outbound", "staff:wang", "2026-01-11T08:00:00+00:00", 79),
        ("A", "phone"): ("outbound", "staff:li", "2026-01-05T12:00:00+00:00", 85),
        ("A", "wechat"): ("inbound", None, "2026-01-10T08:00:00+00:00", 80),
        ("B", "phone"): ("inbound", None, "2026-02-01T09:00:00+00:00", 58),
        ("C", "chat"): ("outbound", "staff:wang", "2026-01-07T16:00:00+00:00", 83),
        ("C", "phone"): ("outbound", "staff:wang", "2026-03-20T10:00:00+00:00", 11),
    }


def test_service_records_by_phase_and_kind_and_contacts_per_staff_member(
    scenario: Scenario,
) -> None:
    report = scenario.report
    assert (report.contacts, report.service_records) == (11, 4)
    assert report.service_phases == {"pre-sale": 3, "in-sale": 0, "after-sale": 1}
    assert [tuple(msgspec.structs.asdict(s).values()) for s in report.services] == [
        ("pre-sale", "consultation", 2, 2),
        ("pre-sale", "demo", 1, 1),
        ("after-sale", "maintenance", 1, 1),
    ]
    assert [tuple(msgspec.structs.asdict(s).values()) for s in report.staff] == [
        ("(none)", 6, 6, 0, 0),
        ("staff:li", 2, 0, 2, 3),
        ("staff:wang", 3, 0, 3, 1),
    ]
    # The KPI report counts contacts with the same definition, per owner.
    assert scenario.kpi == {"(unassigned)": 0, "staff:li": 2, "staff:wang": 3}


def test_an_as_of_in_the_past_counts_only_what_had_occurred_by_then(scenario: Scenario) -> None:
    past = scenario.past
    assert past.contacts == 5 and past.service_records == 2  # B's 01-04 services
    times = [(t.channel, t.staff, t.answered, t.median_hours, t.p90_hours)
             for t in past.response_times]  # fmt: skip
    assert times == [
        (None, None, 3, 2.0, 2.8),
        ("email", None, 1, 2.0, 2.0),
        ("phone", None, 2, 2.25, 2.85),
        (None, "staff:li", 3, 2.0, 2.8),
    ]
    assert past.idle_customers == []  # registered four days before


def test_back_dated_contacts_recorded_later_leave_the_report_known_at_t_unchanged(
    scenario: Scenario,
) -> None:
    assert msgspec.json.encode(scenario.report_later) == msgspec.json.encode(scenario.report)
    assert msgspec.json.encode(scenario.past_later) == msgspec.json.encode(scenario.past)
    now = scenario.now  # known now, the back-dated contacts count
    assert now.contacts == 13
    assert now.response_times[0].answered == 6 and now.response_times[0].unanswered == 0
    # B's 02-01 09:00 question answered by e-mail at 11:00: 2 h, on the phone channel.
    phone = next(t for t in now.response_times if t.channel == "phone")
    assert (phone.answered, phone.unanswered, phone.median_hours) == (3, 0, 2.0)
    idle = {i.external_ref: (i.days_since, i.never_contacted) for i in now.idle_customers}
    assert idle == {"D": (88, False), "A": (79, False), "B": (58, False)}


def test_a_rebuilt_contacts_model_equals_the_one_caught_up_event_by_event(
    scenario: Scenario,
) -> None:
    with CRM(scenario.url) as crm:
        engine = ProjectionEngine(crm, read_models(), batch_size=3)
        try:
            engine.catch_up("contacts")
            live = dump(engine, "contacts")
            assert len(live["contact_facts"]) == 13 and len(live["service_facts"]) == 4
            engine.rebuild("contacts")
            assert dump(engine, "contacts") == live
        finally:
            engine.close()


def test_no_free_text_reaches_the_contacts_model(scenario: Scenario) -> None:
    with CRM(scenario.url) as crm:
        engine = ProjectionEngine(crm, read_models())
        try:
            rows = dump(engine, "contacts")
        finally:
            engine.close()
    cells = {str(cell) for table in rows.values() for row in table for cell in row}
    assert not any("回访" in cell or cell == "ok" for cell in cells)


def test_a_section_lists_only_its_items_and_the_table_only_its_columns(
    scenario: Scenario,
) -> None:
    with CRM(scenario.url) as crm, Reports(crm) as reports:
        idle = reports.contacts(as_of=AS_OF, known_at=scenario.known_at, idle_days=30,
                                section="idle")  # fmt: skip
        with pytest.raises(CrmError, match="not a section"):
            reports.contacts(section="nope")
    assert [i.external_ref for i in idle.idle_customers] == ["D", "A", "B"]
    assert idle.last_contacts == [] and idle.response_times == [] and idle.staff == []
    assert idle.contacts == 11  # totals stay those of the whole cut
    rows = table_rows(idle)
    assert list(rows[0]) == ["section", "external_ref", "owner", "days_since",
                             "last_contact_at", "never_contacted", "idle_since", "customer_id"]  # fmt: skip
    every = table_rows(scenario.report)
    assert {tuple(r) for r in every} == {TABLE_COLUMNS}  # every field has its column
    assert len(every) == 3 + 3 + 6 + 7 + 3 + 3


def _c(cid: str, occurred: str, direction: str, channel: str = "phone") -> Contact:
    return Contact(cid, channel, direction, None, occurred[:10], occurred)


def test_inbound_contacts_waiting_together_are_all_answered_by_the_next_outbound() -> None:
    rows = [
        _c("x", "2026-01-01T00:00:00.000000Z", "outbound"),  # answers nothing before it
        _c("x", "2026-01-01T01:00:00.000000Z", "inbound"),
        _c("x", "2026-01-01T02:00:00.000000Z", "inbound", "email"),
        _c("x", "2026-01-01T05:00:00.000000Z", "outbound", "sms"),
        _c("x", "2026-01-01T06:00:00.000000Z", "outbound"),
        _c("x", "2026-01-01T07:00:00.000000Z", "inbound"),  # unanswered: y's reply is not x's
        _c("y", "2026-01-01T08:00:00.000000Z", "outbound"),
    ]
    pairs = first_responses(rows)
    assert [(q.occurred_at[11:13], a.occurred_at[11:13] if a else None) for q, a in pairs] == [
        ("01", "05"), ("02", "05"), ("07", None),
    ]  # fmt: skip
    overall = contacts.response_times(rows)[0]
    assert (overall.answered, overall.unanswered, overall.median_hours) == (2, 1, 3.5)
