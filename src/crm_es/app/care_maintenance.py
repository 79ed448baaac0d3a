"""The care part of the nightly job: the commands that schedule what the care rules make due.

:func:`crm_es.app.maintenance.maintain` loads every customer once; for each, :func:`care_commands`
turns the due tasks of :mod:`crm_es.app.care_scheduler` into ``schedule_care_task`` commands (and
open greetings of customers who withdrew consent into ``cancel_care_task``), with command ids
made of the rule, the customer and the trigger day: a second run, or a run on another host at
the same time, finds them done (the customer holds the task id) or is answered "duplicate".

The win-back rule needs the population: who is at risk is the churn report's answer (the one
rule, :mod:`crm_es.analytics.churn_rule`, over the ``customers`` read model as of the start of
the day) and "high value" is the segments report's M score or net spend in the rule's currency.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from uuid import UUID

import numpy as np

from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
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
from crm_es.domain.times import EPOCH
from crm_es.domain.values import Money
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports.facts.population import load_population
from crm_es.reports.query import ReportQuery
from crm_es.store.store import Store

_AT_RISK = STATUS_NAMES.index("at_risk")
_TOP_QUINTILE = 5


def registered_customers(store: Store) -> list[UUID]:
    """Every customer ever registered, in id order (the care rules look at all of them)."""
    with store.db.reading() as tx:
        rows = tx.query(
            f"SELECT originator_id FROM {store.events_table} WHERE topic = ?",
            (ev.CustomerRegistered.TOPIC,),
        )
    return sorted(UUID(str(r[0])) for r in rows)


def at_risk_high_value(
    store: Store, rule: WinBack, start: datetime, churn: ChurnRule | None = None
) -> dict[UUID, date]:
    """At-risk, high-value customers as of ``start``, with the day each became at risk (the
    first day their silence passed the at-risk share of their threshold)."""
    engine = ProjectionEngine(store, read_models())
    churn = churn or ChurnRule()
    try:
        engine.catch_up_all()
        with engine.db.reading() as tx:
            tables = engine.all_active_tables(tx)
            query = ReportQuery.at(as_of=start, tz=store.timezone)
            pop = load_population(tx, tables, query, rule.currency, churn)
    finally:
        engine.close()
    high = np.zeros(len(pop.customers.ids), dtype=bool)
    if rule.high_value == "top_monetary_quintile":
        high[pop.buyers] = pop.scores.m == _TOP_QUINTILE
    else:
        assert rule.min_net_spend is not None  # checked when the rules were read
        least = Money.parse(rule.min_net_spend, rule.currency).minor
        high[:] = [spend >= least for spend in pop.facts.net_spend]
    # At risk once silent for more than share × threshold days: from the next whole day on.
    silence = np.floor(churn.at_risk_share * pop.thresholds).astype(np.int64) + 1
    chosen = np.flatnonzero((pop.statuses == _AT_RISK) & high)
    return {
        UUID(pop.customers.ids[i]): EPOCH + timedelta(days=int(pop.facts.last_day[i] + silence[i]))
        for i in chosen.tolist()
    }


def care_commands(
    customer: Customer,
    rules: CareRules,
    day: date,
    start: datetime,
    tz: tzinfo,
    at_risk: dict[UUID, date],
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
