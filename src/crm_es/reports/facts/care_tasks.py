"""Care tasks as of a query: every task scheduled by the cut, folded to its state at the cut.

Shared by the agenda, KPI and HTML reports.
"""

from __future__ import annotations

from datetime import date

import msgspec

from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


class TaskState(msgspec.Struct):
    """One care task folded up to the cut."""

    customer_id: str
    task_id: str
    care_kind: str | None
    due_on: date | None
    staff: str | None
    status: str = "scheduled"  # scheduled | completed | cancelled
    completed_on: date | None = None  # the completion's day in the store's time zone


def fold_tasks(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[TaskState]:
    """Every care task scheduled by the cut, with its state as of the cut."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, task_id, kind, care_kind, due_on, staff, day "
        f"FROM {tables['task_events']} WHERE {cut} ORDER BY customer_id, version",
        params,
    )
    tasks: dict[tuple[str, str], TaskState] = {}
    for cid, task_id, kind, care_kind, due_on, staff, day in rows:
        key = (cid, task_id)
        if kind == "scheduled":
            due = date.fromisoformat(due_on) if due_on else None
            tasks[key] = TaskState(cid, task_id, care_kind, due, staff)
            continue
        task = tasks.get(key)
        if task is None:  # scheduled outside the cut
            continue
        if kind == "completed":
            task.status, task.completed_on = "completed", date.fromisoformat(day)
        elif kind == "cancelled":
            task.status = "cancelled"
    return list(tasks.values())


def on_time(task: TaskState) -> bool:
    """A care task is on time when the day of its completion (store time zone) is on or before
    its due day: the one definition, shared by the KPI and goals reports."""
    return (
        task.completed_on is not None
        and task.due_on is not None
        and task.completed_on <= task.due_on
    )
