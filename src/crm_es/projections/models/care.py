"""Read model ``care``: care-task events and birthdays, for the agenda and staff KPIs.

A birthday is personal data; only its month and day are kept (enough for "birthdays in the next N
days"), as facts with both times (a changed or cleared birthday is a new fact, so the agenda of a
past date stays what it was), and every row of the customer is deleted when its personal data is
erased.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import msgspec

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT


class Care(ReadModel):
    name = "care"
    schema_version = 3  # v2: the day of each fact in the store's time zone; v3: birthday facts
    tables: ClassVar[dict[str, str]] = {
        "task_events": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, task_id {TEXT} NOT NULL, "
            f"kind {TEXT} NOT NULL, care_kind {TEXT}, due_on {TEXT}, staff {TEXT}, channel {TEXT}, "
            f"day {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "birthday_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, month_day {TEXT}, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {
        "task_events": "customer_id, version",
        "birthday_facts": "customer_id, version",
    }
    personal_tables: ClassVar[frozenset[str]] = frozenset({"birthday_facts"})
    indexes: ClassVar[dict[str, str]] = {
        "tasks_by_id": "{task_events} (customer_id, task_id)",
    }

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.CustomerRegistered: self._registered,
            ev.ProfileUpdated: self._birthday_given,
            ev.PersonalDataErased: self._erased,
            ev.CareTaskScheduled: self._task_scheduled,
            ev.CareTaskCompleted: self._task_event("completed"),
            ev.CareTaskCancelled: self._task_event("cancelled"),
        }

    @staticmethod
    def _birthday_fact(e: ev.CustomerEvent, birthday: str | None, row: RowKeys) -> Statement:
        """The month and day of a birthday given (None: cleared) at the event's times."""
        month_day = birthday[5:] if isinstance(birthday, str) and len(birthday) == 10 else None
        return (
            "INSERT INTO {birthday_facts} (customer_id, version, month_day, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, month_day, row.occurred_at, row.recorded_at),
        )

    def _registered(self, e: ev.CustomerRegistered, row: RowKeys) -> list[Statement]:
        return [self._birthday_fact(e, e.birthday, row)] if e.birthday else []

    def _birthday_given(self, e: ev.ProfileUpdated, row: RowKeys) -> list[Statement]:
        if e.birthday is msgspec.UNSET:
            return []
        return [self._birthday_fact(e, e.birthday, row)]

    @staticmethod
    def _erased(e: ev.PersonalDataErased, row: RowKeys) -> list[Statement]:
        return [("DELETE FROM {birthday_facts} WHERE customer_id = ?", (row.customer_id,))]

    @staticmethod
    def _task_row(
        e: ev.CustomerEvent, task_id: str, kind: str, row: RowKeys,
        scheduled: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
    ) -> list[Statement]:  # fmt: skip
        care_kind, due_on, staff, channel = scheduled
        return [(
            "INSERT INTO {task_events} (customer_id, version, task_id, kind, care_kind, due_on, "
            "staff, channel, day, occurred_at, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, task_id, kind, care_kind, due_on, staff,
             channel, row.day, row.occurred_at, row.recorded_at),
        )]  # fmt: skip

    def _task_scheduled(self, e: ev.CareTaskScheduled, row: RowKeys) -> list[Statement]:
        scheduled = (e.kind, e.due_on.isoformat(), e.staff, e.channel)
        return self._task_row(e, e.task_id, "scheduled", row, scheduled)

    def _task_event(self, kind: str) -> Handler:
        def handle(e: ev.CareTaskCompleted, row: RowKeys) -> list[Statement]:
            return self._task_row(e, e.task_id, kind, row)

        return handle
