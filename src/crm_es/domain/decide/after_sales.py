"""After-sales deciders: service records, complaints, satisfaction surveys and care tasks.

Each ``xxx(customer, command, batch)`` checks the rules of design §4 for one command and adds
its events to the :class:`~crm_es.domain.decide.envelope.Batch`; a rule that fails raises a
:class:`~crm_es.domain.errors.CrmError` before any event exists. Pure: no I/O, no clock (the
SLA due time of a complaint counts from the command's business time). Dispatched to by
:func:`crm_es.domain.decide.decisions.decide`, whose table maps every command type to its decider.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from msgspec import UNSET

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide.envelope import Batch
from crm_es.domain.errors import DuplicateId, InvalidState, InvalidValue, UnknownId
from crm_es.domain.survey_topics import check_topic
from crm_es.domain.values import DEFAULT_SCALES, SLA_HOURS, Metric, Money


def record_service(cu: Customer, c: cmd.RecordService, b: Batch) -> None:
    if c.order_id is not None and c.order_id not in cu.orders:
        raise UnknownId("order", c.order_id, cu.id)
    b.add(
        ev.ServiceRecorded,
        phase=c.phase,
        kind=c.kind,
        summary=c.summary,
        order_id=c.order_id,
        staff=c.staff,
    )


def _complaint(cu: Customer, complaint_id: str) -> Any:
    complaint = cu.complaints.get(complaint_id)
    if complaint is None:
        raise UnknownId("complaint", complaint_id, cu.id)
    return complaint


def file_complaint(cu: Customer, c: cmd.FileComplaint, b: Batch) -> None:
    if c.complaint_id in cu.complaints:
        raise DuplicateId("complaint", c.complaint_id, cu.id)
    b.add(
        ev.ComplaintFiled,
        complaint_id=c.complaint_id,
        category=c.category,
        severity=c.severity,
        channel=c.channel,
        description=c.description,
        sla_due=b.envelope.occurred_at + timedelta(hours=SLA_HOURS[c.severity]),
    )


def escalate_complaint(cu: Customer, c: cmd.EscalateComplaint, b: Batch) -> None:
    if _complaint(cu, c.complaint_id).status == "resolved":
        raise InvalidState(f"complaint {c.complaint_id!r} is resolved; reopen it to escalate")
    b.add(ev.ComplaintEscalated, complaint_id=c.complaint_id, escalated_to=c.escalated_to)


def resolve_complaint(cu: Customer, c: cmd.ResolveComplaint, b: Batch) -> None:
    if _complaint(cu, c.complaint_id).status == "resolved":
        raise InvalidState(f"complaint {c.complaint_id!r} is already resolved")
    compensation: Money | None = None
    if c.compensation is not None:
        if c.compensation_currency is None:
            raise InvalidValue("compensation_currency", None, "required with compensation")
        compensation = Money.parse(c.compensation, c.compensation_currency, "compensation")
    b.add(
        ev.ComplaintResolved,
        complaint_id=c.complaint_id,
        resolution=c.resolution,
        compensation=compensation.minor if compensation else None,
        compensation_currency=compensation.currency if compensation else None,
    )


def reopen_complaint(cu: Customer, c: cmd.ReopenComplaint, b: Batch) -> None:
    if _complaint(cu, c.complaint_id).status != "resolved":
        raise InvalidState(f"complaint {c.complaint_id!r} is not resolved, so cannot be reopened")
    b.add(ev.ComplaintReopened, complaint_id=c.complaint_id)


def follow_up_complaint(cu: Customer, c: cmd.FollowUpComplaint, b: Batch) -> None:
    if _complaint(cu, c.complaint_id).status != "resolved":
        raise InvalidState(
            f"complaint {c.complaint_id!r} is not resolved; follow up after resolving"
        )
    b.add(ev.ComplaintFollowedUp, complaint_id=c.complaint_id, satisfied=c.satisfied, note=c.note)


def answer_survey(cu: Customer, c: cmd.AnswerSurvey, b: Batch) -> None:
    if c.survey_id in cu.surveys_answered:
        raise DuplicateId("survey answer", c.survey_id, cu.id)
    low, high = DEFAULT_SCALES[c.metric]
    low = low if c.scale_min is None else c.scale_min
    high = high if c.scale_max is None else c.scale_max
    if low >= high:
        raise InvalidValue("scale", f"{low}-{high}", "scale_min must be below scale_max")
    if c.metric is Metric.GAP:
        if c.expectation is None or c.performance is None or c.score is not None:
            raise InvalidValue("score", c.score, "a gap answer takes expectation and performance")
        values = {"expectation": c.expectation, "performance": c.performance}
    else:
        if c.score is None or c.expectation is not None or c.performance is not None:
            raise InvalidValue("score", c.score, f"a {c.metric} answer takes one score")
        values = {"score": c.score}
    for field, value in values.items():
        if not low <= value <= high:
            raise InvalidValue(field, value, f"outside the {c.metric} scale {low}-{high}")
    topic = c.topic if isinstance(c.topic, str) else UNSET  # None and unset: an overall answer
    if isinstance(topic, str):
        check_topic(topic, b.envelope.survey_topics)
    b.add(
        ev.SurveyAnswered,
        survey_id=c.survey_id,
        metric=c.metric,
        score=c.score,
        expectation=c.expectation,
        performance=c.performance,
        scale_min=low,
        scale_max=high,
        comment=c.comment,
        channel=c.channel,
        topic=topic,
    )


def _care_task(cu: Customer, task_id: str, action: str) -> None:
    task = cu.care_tasks.get(task_id)
    if task is None:
        raise UnknownId("care task", task_id, cu.id)
    if task.status != "scheduled":
        raise InvalidState(f"care task {task_id!r} is already {task.status}; cannot {action} it")


def schedule_care_task(cu: Customer, c: cmd.ScheduleCareTask, b: Batch) -> None:
    if c.task_id in cu.care_tasks:
        raise DuplicateId("care task", c.task_id, cu.id)
    b.add(
        ev.CareTaskScheduled,
        task_id=c.task_id,
        kind=c.kind,
        due_on=c.due_on,
        channel=c.channel,
        staff=c.staff,
        note=c.note,
    )


def complete_care_task(cu: Customer, c: cmd.CompleteCareTask, b: Batch) -> None:
    _care_task(cu, c.task_id, "complete")
    b.add(ev.CareTaskCompleted, task_id=c.task_id, outcome=c.outcome, note=c.note)


def cancel_care_task(cu: Customer, c: cmd.CancelCareTask, b: Batch) -> None:
    _care_task(cu, c.task_id, "cancel")
    b.add(ev.CareTaskCancelled, task_id=c.task_id)
