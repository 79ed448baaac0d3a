"""The care part of the nightly job: the commands that schedule what the care rules make due.

:func:`crm_es.app.maintenance.maintain` loads every customer once; for each, :func:`care_commands`
turns the due tasks of :mod:`crm_es.app.care_scheduler` into ``schedule_care_task`` commands (and
open greetings of customers who withdrew consent into ``cancel_care_task``), with command ids
made of the rule, the customer and the trigger day: a second run, or a run on another host at
the same time, finds them done (the customer holds the task id) or is answered "duplicate".

The win-back rule needs the population, which no single stream holds: the caller passes who is
at risk and of high value (:mod:`crm_es.reports.facts.care_targets`, as ``crm-es maintain``
does), and :func:`high_value` says what the rule means by high value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from uuid import UUID

from crm_es.app.care_rules import CareRules, WinBack
from crm_es.app.care_scheduler import (
    CONSENT_RULE,
    cancel_command_id,
    due_care_tasks,
    greetings_without_consent,
    schedule_command_id,
)
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.values import Money
from crm_es.store.store import Store


def registered_customers(store: Store) -> list[UUID]:
    """Every customer ever registered, in id order (the care rules look at all of them)."""
    with store.db.reading() as tx:
        rows = tx.query(
            f"SELECT originator_id FROM {store.events_table} WHERE topic = ?",
            (ev.CustomerRegistered.TOPIC,),
        )
    return sorted(UUID(str(r[0])) for r in rows)


def care_commands(
    customer: Customer,
    rules: CareRules,
    day: date,
    start: datetime,
    tz: tzinfo,
    at_risk: Mapping[UUID, date],
) -> list[tuple[str, cmd.Command]]:
    """(rule, command) for each care change due for ``customer`` on ``day``."""
    found: list[tuple[str, cmd.Command]] = []
    for task in due_care_tasks(customer, rules, day, start, tz, at_risk.get(customer.id)):
        schedule = cmd.ScheduleCareTask(
            customer=str(customer.id),
            task_id=task.task_id,
            kind=task.kind,
            due_on=task.due_on,
            staff=customer.owner,
            note=f"{task.note} (care rule {task.rule})",
            occurred_at=start,
            command_id=schedule_command_id(task.rule, customer.id, task.trigger),
        )
        found.append((task.rule, schedule))
    for task_id in greetings_without_consent(customer, start):
        cancel = cmd.CancelCareTask(
            customer=str(customer.id),
            task_id=task_id,
            occurred_at=start,
            command_id=cancel_command_id(customer.id, task_id),
            reason="marketing consent withdrawn",
        )
        found.append((CONSENT_RULE, cancel))
    return found


def high_value(rule: WinBack) -> tuple[str, int | None]:
    """(currency, least net spend in minor units) of the rule's "high value"; None: the top
    RFM monetary quintile (the fields of :class:`crm_es.reports.facts.care_targets.HighValue`)."""
    if rule.high_value == "top_monetary_quintile" or rule.min_net_spend is None:
        return rule.currency, None
    return rule.currency, Money.parse(rule.min_net_spend, rule.currency).minor
