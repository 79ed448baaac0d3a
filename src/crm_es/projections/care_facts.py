"""Read model ``care``: care-task events and upcoming birthdays, for the agenda and staff KPIs.

A birthday is personal data; only its month and day are kept (enough for "birthdays in the next N
days"), and the row is deleted when the customer's personal data is erased.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import msgspec

from crm_es.app.database import BIGINT, TEXT
from crm_es.domain import events as ev
from crm_es.projections.engine import ReadModel, RowKeys, Statement

_TASK_KINDS: dict[type[ev.CustomerEvent], str] = {
    ev.CareTaskScheduled: "scheduled",
    ev.CareTaskCompleted: "completed",
    ev.CareTaskCancelled: "cancelled",
}


class CareFacts(ReadModel):
    name = "care"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "task_events": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, task_id {TEXT} NOT NULL, "
            f"kind {TEXT} NOT NULL, care_kind {TEXT}, due_on {TEXT}, staff {TEXT}, channel {TEXT}, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, "
            "PRIMARY KEY (customer_id, version)"
        ),
        "birthdays": f"customer_id {TEXT} PRIMARY KEY, month_day {TEXT} NOT NULL",
    }
    indexes: ClassVar[dict[str, str]] = {
        "tasks_by_id": "{task_events} (customer_id, task_id)",
    }

    def handle(self, event: ev.CustomerEvent, row: RowKeys) -> Iterable[Statement]:
        cid = row.customer_id
        if isinstance(event, ev.CustomerRegistered | ev.ProfileUpdated):
            birthday = event.birthday
            if birthday is msgspec.UNSET:
                return
            yield ("DELETE FROM {birthdays} WHERE customer_id = ?", (cid,))
            if isinstance(birthday, str) and len(birthday) == 10:
                yield (
                    "INSERT INTO {birthdays} (customer_id, month_day) VALUES (?, ?)",
                    (cid, birthday[5:]),
                )
            return
        if isinstance(event, ev.PersonalDataErased):
            yield ("DELETE FROM {birthdays} WHERE customer_id = ?", (cid,))
            return
        kind = _TASK_KINDS.get(type(event))
        if kind is None:
            return
        scheduled = event if isinstance(event, ev.CareTaskScheduled) else None
        yield (
            "INSERT INTO {task_events} (customer_id, version, task_id, kind, care_kind, due_on, "
            "staff, channel, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, event.originator_version, event.task_id, kind,  # type: ignore[attr-defined]
             scheduled.kind if scheduled else None,
             scheduled.due_on.isoformat() if scheduled else None,
             scheduled.staff if scheduled else None, scheduled.channel if scheduled else None,
             row.occurred_at, row.recorded_at),
        )  # fmt: skip
