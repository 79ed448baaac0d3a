"""Greetings are marketing: which care tasks and birthdays consent keeps off the reports.

A greeting (birthday, holiday) may have been scheduled while the customer agreed to marketing
and then the customer withdrew. As of a cut where the consent stands withdrawn such a task must
not be done, so it is neither due nor overdue in any report (the agenda, the watch list, the
KPI's overdue count: one answer everywhere), and the customer's birthday is not on the agenda.
``crm-es maintain`` then records the cancellation (``CareTaskCancelled``), so the history says
so too. Consent never given is not withdrawn: a greeting scheduled by hand then rests on the
staff's judgement, and the automatic rules never schedule one.
"""

from __future__ import annotations

from typing import Final

from crm_es.reports.facts.care_tasks import TaskState
from crm_es.reports.facts.customers import attributes_as_of
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

GREETING_KINDS: Final = frozenset({"birthday_greeting", "holiday_greeting"})


def withdrawn_consent(tx: Tx, tables: dict[str, str], query: ReportQuery) -> set[str]:
    """Customers whose marketing consent stood withdrawn as of the query."""
    consent = attributes_as_of(tx, tables, query, ["consent"])["consent"]
    return {cid for cid, value in consent.items() if value == "withdrawn"}


def withheld(task: TaskState, withdrawn: set[str]) -> bool:
    """Whether ``task`` is a greeting still scheduled for a customer in ``withdrawn``."""
    return (
        task.status == "scheduled"
        and task.care_kind in GREETING_KINDS
        and task.customer_id in withdrawn
    )


def without_withheld(tasks: list[TaskState], withdrawn: set[str]) -> tuple[list[TaskState], int]:
    """``tasks`` without the greetings withheld from customers in ``withdrawn`` (as
    :func:`withdrawn_consent` gives them for a query), and how many were left out."""
    kept = [t for t in tasks if not withheld(t, withdrawn)]
    return kept, len(tasks) - len(kept)
