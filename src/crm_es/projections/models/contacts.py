"""Read model ``contacts``: contacts logged and service records, as time-stamped fact rows.

One row per ``ContactLogged`` (channel, direction, staff) and per ``ServiceRecorded`` (phase
pre-sale / in-sale / after-sale, kind, staff), each with its business time (``occurred_at``),
recorded time (``recorded_at``), the business day in the store's time zone and the stream version,
so the contacts report can answer any (as of D, known at T) and order a customer's contacts the
way they happened. Response times, last contacts and idle customers depend on the reference date
and on which contact answers which, so they are computed by the report, never stored.

Free texts are not copied: a contact's summary, outcome and customer feedback and a service
record's summary are personal fields (encrypted in the event store, read by no read model), so
this model holds no personal data and an erasure leaves its rows alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT


class Contacts(ReadModel):
    name = "contacts"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "contact_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, channel {TEXT} NOT NULL, "
            f"direction {TEXT} NOT NULL, staff {TEXT}, day {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "service_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, phase {TEXT} NOT NULL, "
            f"kind {TEXT} NOT NULL, staff {TEXT}, day {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {
        "contact_facts": "customer_id, version",
        "service_facts": "customer_id, version",
    }

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.ContactLogged: self._contact_logged,
            ev.ServiceRecorded: self._service_recorded,
        }

    @staticmethod
    def _contact_logged(e: ev.ContactLogged, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {contact_facts} (customer_id, version, channel, direction, staff, day, "
            "occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, e.channel, e.direction, e.staff, row.day,
             row.occurred_at, row.recorded_at),
        )]  # fmt: skip

    @staticmethod
    def _service_recorded(e: ev.ServiceRecorded, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {service_facts} (customer_id, version, phase, kind, staff, day, "
            "occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, e.phase, e.kind, e.staff, row.day,
             row.occurred_at, row.recorded_at),
        )]  # fmt: skip
