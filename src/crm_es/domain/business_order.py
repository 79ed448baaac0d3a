"""Business-time order inside an entity: a step of a complaint, an order, a care task or a sales
opportunity cannot have happened before the entity it acts on began.

Commands may be back-dated (a late-recorded resolution, a purchase keyed in from paper), so the
stream order of events says nothing about when they happened. What it must not say is that a
complaint was resolved before it was filed, an order refunded before it was paid, a care task
completed before it was scheduled, a complaint or sales-opportunity step before its previous
step, or a churn or win-back before the customer's last one: reports would show negative
resolution hours, a sales cycle shorter than nothing, or a win-back that precedes its churn. One
rule for the deciders (a command that breaks it is refused and stores nothing) and for
:mod:`history_rules` (an imported history that breaks it is refused).
"""

from __future__ import annotations

from datetime import datetime

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer

_ComplaintStep = (
    ev.ComplaintEscalated | ev.ComplaintResolved | ev.ComplaintReopened | ev.ComplaintFollowedUp
)
_COMPLAINT_STEPS: dict[type[ev.CustomerEvent], str] = {
    ev.ComplaintEscalated: "escalated",
    ev.ComplaintResolved: "resolved",
    ev.ComplaintReopened: "reopened",
    ev.ComplaintFollowedUp: "followed up",
}
_TASK_STEPS: dict[type[ev.CustomerEvent], str] = {
    ev.CareTaskCompleted: "completed",
    ev.CareTaskCancelled: "cancelled",
}
_OpportunityStep = ev.OpportunityAdvanced | ev.OpportunityWon | ev.OpportunityLost
_OPPORTUNITY_STEPS: dict[type[ev.CustomerEvent], str] = {
    ev.OpportunityAdvanced: "moved to another stage",
    ev.OpportunityWon: "won",
    ev.OpportunityLost: "lost",
}


def earliest_time(state: Customer, event: ev.CustomerEvent) -> tuple[datetime, str] | None:
    """(the earliest business time ``event`` may have, what happened then), or None when the
    event's entity sets no bound."""
    if isinstance(event, ev.PurchaseRefunded):
        order = state.orders.get(event.order_id)
        return (order.occurred_at, f"order {event.order_id!r} was paid") if order else None
    if isinstance(event, _ComplaintStep):
        complaint = state.complaints.get(event.complaint_id)
        if complaint is None:
            return None
        name = f"complaint {event.complaint_id!r}"
        last = complaint.last_step_at or complaint.resolved_at or complaint.filed_at
        if last == complaint.filed_at:
            return last, f"{name} was filed"
        if last == complaint.resolved_at:
            return last, f"{name} was resolved"
        return last, f"the last step of {name}"
    if isinstance(event, ev.CareTaskCompleted | ev.CareTaskCancelled):
        task = state.care_tasks.get(event.task_id)
        if task is None or task.scheduled_at is None:
            return None  # a task from a snapshot of schema 3 or older has no scheduling time
        return task.scheduled_at, f"care task {event.task_id!r} was scheduled"
    if isinstance(event, ev.CustomerChurned | ev.CustomerWonBack) and state.churn_since:
        return state.churn_since, "the customer's last churn or win-back"
    if isinstance(event, _OpportunityStep):
        opportunity = state.opportunities.get(event.opportunity_id)
        if opportunity is None:
            return None
        name = f"opportunity {event.opportunity_id!r}"
        if opportunity.last_step_at == opportunity.opened_at:
            return opportunity.opened_at, f"{name} was opened"
        return opportunity.last_step_at, f"the last step of {name}"
    return None


def order_problem(state: Customer, event: ev.CustomerEvent) -> str | None:
    """Why ``event`` cannot have happened when it says, judged on the state before it; or None."""
    bound = earliest_time(state, event)
    if bound is None or event.occurred_at >= bound[0]:
        return None
    when, what = bound
    step = _COMPLAINT_STEPS.get(type(event)) or _TASK_STEPS.get(type(event)) or _step_name(event)
    return f"{step} before {what} at {when.isoformat()}"


def _step_name(event: ev.CustomerEvent) -> str:
    if isinstance(event, ev.PurchaseRefunded):
        return "refunded"
    if isinstance(event, _OpportunityStep):
        return _OPPORTUNITY_STEPS[type(event)]
    return "churned" if isinstance(event, ev.CustomerChurned) else "won back"


def latest_time(state: Customer) -> datetime:
    """The business time of the latest fact ``state`` keeps a time for: a step that changes the
    whole customer (a merge) must not be dated before it, or it would be judged on facts that
    had not happened yet (a back-dated merge moves no points granted after it). Services,
    surveys and care-task closings keep no time in the state and do not bound it."""
    times = [state.registered_at, *state.attribute_times.values()]
    times += [t for t in (state.tier_since, state.points_since, state.churn_since) if t]
    times += [t for t in (state.last_contact_at, state.last_purchase_at) if t]
    times += [o.occurred_at for o in state.orders.values()]
    for c in state.complaints.values():
        times += [t for t in (c.filed_at, c.resolved_at, c.last_step_at) if t]
    times += [t.scheduled_at for t in state.care_tasks.values() if t.scheduled_at]
    times += [o.last_step_at for o in state.opportunities.values()]
    times += [lot.granted_at for lot in state.lots if lot.granted_at]
    return max(times)
