"""Could the service have written this history? The rules the deciders enforce, checked on
events that come from outside (an audit import): a file whose chains verify may still have been
forged and re-hashed by whoever wrote it.

Each event is judged against the state its predecessors left, as the decider that would have
produced it judges a command: amounts within bounds and in a known currency, ids unique or
existing, complaints, care tasks and sales opportunities in a state that allows the step,
points drawn from lots that hold them, no personal value after an erasure, business time within
bounds and in order inside each entity (:mod:`crm_es.domain.business_order`). A history that
passes is one the service could have recorded; one that fails is refused, naming the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Final

from crm_es.domain import events as ev
from crm_es.domain.business_order import latest_time, order_problem
from crm_es.domain.customer import Customer, PointsLot, evolve
from crm_es.domain.decide.envelope import EARLIEST_BUSINESS_TIME, FUTURE_SKEW
from crm_es.domain.personal_fields import holds_personal_data
from crm_es.domain.pipeline import is_stage_key
from crm_es.domain.survey_topics import is_topic_code
from crm_es.domain.values import CURRENCY_EXPONENTS, MAX_MINOR_UNITS, MAX_QUANTITY, MAX_SCORE

MAX_POINTS: Final = 1_000_000_000
ONE_DAY: Final = timedelta(days=1)


def history_problem(events: Iterable[ev.CustomerEvent]) -> tuple[int, str] | None:
    """(version, why) of the first event of one stream the service could not have written,
    or None. Personal values are judged present or absent, never read (they may be
    ciphertext)."""
    state: Customer | None = None
    for event in events:
        why = event_problem(state, event)
        if why is not None:
            return event.originator_version, why
        state = evolve(state, (event,))
    return None


def event_problem(state: Customer | None, event: ev.CustomerEvent) -> str | None:
    if state is None:
        if not isinstance(event, ev.CustomerRegistered) or event.originator_version != 1:
            return "the stream does not start with the customer's registration"
    elif isinstance(event, ev.CustomerRegistered):
        return "a second registration of the same customer"
    if not event.actor or not event.actor.strip():
        return "no actor"
    if event.occurred_at < EARLIEST_BUSINESS_TIME:
        return "business time before 1900"
    if event.occurred_at > event.recorded_at + FUTURE_SKEW:
        return "business time after the time it was recorded"
    if state is not None and state.erased and holds_personal_data(event):
        return "personal data stored after the customer's erasure"
    if state is None:
        return None
    if state.merged_into is not None and not isinstance(event, _AFTER_MERGE):
        return f"an event on a customer closed by its merge into {state.merged_into}"
    rule = _RULES.get(type(event))
    return (rule(state, event) if rule else None) or order_problem(state, event)


def _money(amount: int, currency: str) -> str | None:
    if currency not in CURRENCY_EXPONENTS:
        return f"unknown currency {currency!r}"
    if not 0 <= amount <= MAX_MINOR_UNITS:
        return f"amount {amount} out of bounds"
    return None


def _purchase(c: Customer, e: ev.PurchaseRecorded) -> str | None:
    if e.order_id in c.orders:
        return f"order {e.order_id!r} recorded twice"
    if any(not 1 <= item.quantity <= MAX_QUANTITY for item in e.items):
        return f"a line item quantity outside 1..{MAX_QUANTITY}"
    return _money(e.amount, e.currency)


def _resolved(c: Customer, e: ev.ComplaintResolved) -> str | None:
    if e.compensation is None:
        return None if e.compensation_currency is None else "a currency without compensation"
    return _money(e.compensation, e.compensation_currency or "")


def _refund(c: Customer, e: ev.PurchaseRefunded) -> str | None:
    order = c.orders.get(e.order_id)
    if order is None:
        return f"refund of unknown order {e.order_id!r}"
    if e.currency != order.currency or not 0 < e.amount <= order.amount - order.refunded:
        return f"refund of {e.amount} {e.currency} exceeds what order {e.order_id!r} paid"
    return None


def _service(c: Customer, e: ev.ServiceRecorded) -> str | None:
    if e.order_id is not None and e.order_id not in c.orders:
        return f"service on unknown order {e.order_id!r}"
    return None


def _complaint(step: str, states: tuple[str, ...]) -> Callable[[Customer, Any], str | None]:
    def rule(c: Customer, e: Any) -> str | None:
        complaint = c.complaints.get(e.complaint_id)
        if complaint is None:
            return f"{step} of unknown complaint {e.complaint_id!r}"
        if complaint.status not in states:
            return f"{step} of complaint {e.complaint_id!r} while it is {complaint.status}"
        return None

    return rule


def _both(*rules: Callable[[Customer, Any], str | None]) -> Callable[[Customer, Any], str | None]:
    def rule(c: Customer, e: Any) -> str | None:
        return next((why for r in rules if (why := r(c, e)) is not None), None)

    return rule


def _filed(c: Customer, e: ev.ComplaintFiled) -> str | None:
    return f"complaint {e.complaint_id!r} filed twice" if e.complaint_id in c.complaints else None


def _survey(c: Customer, e: ev.SurveyAnswered) -> str | None:
    if e.survey_id in c.surveys_answered:
        return f"survey {e.survey_id!r} answered twice"
    if not -MAX_SCORE <= e.scale_min < e.scale_max <= MAX_SCORE:
        return f"a scale {e.scale_min}-{e.scale_max} no command can set"
    scores = [s for s in (e.score, e.expectation, e.performance) if s is not None]
    if not scores or any(not e.scale_min <= s <= e.scale_max for s in scores):
        return f"scores {scores} outside the scale {e.scale_min}-{e.scale_max}"
    # Any topic code: the source store's list may differ from this one's, but never free text.
    if isinstance(e.topic, str) and not is_topic_code(e.topic):
        return f"a topic {e.topic!r} that is no topic code"
    return None


def _granted(c: Customer, e: ev.PointsGranted) -> str | None:
    if not 0 < e.points <= MAX_POINTS or e.lot_id != e.originator_version:
        return f"a grant of {e.points} points as lot {e.lot_id}"
    return None


def _drawn(c: Customer, e: ev.PointsRedeemed | ev.PointsExpired) -> str | None:
    lots = {lot.lot_id: lot.remaining for lot in c.lots}
    if e.points <= 0 or sum(d.points for d in e.draws) != e.points:
        return f"{e.points} points drawn as {[d.points for d in e.draws]}"
    for draw in e.draws:
        if draw.points <= 0 or lots.get(draw.lot_id, 0) < draw.points:
            return f"{draw.points} points drawn from lot {draw.lot_id}, which does not hold them"
        lots[draw.lot_id] -= draw.points
    drawn = {d.lot_id for d in e.draws}
    for lot in c.lots:
        why = _draw_time_problem(lot, e) if lot.lot_id in drawn else None
        if why is not None:
            return why
    return None


def _draw_time_problem(lot: PointsLot, e: ev.PointsRedeemed | ev.PointsExpired) -> str | None:
    """A lot drawn before its grant, redeemed after its expiry or expired before it. The event's
    day in any time zone is within a day of its UTC day: only a day beyond that is judged."""
    if lot.granted_at is not None and lot.granted_at > e.occurred_at:
        return f"points drawn from lot {lot.lot_id} before it was granted"
    day = e.occurred_at.date()
    if isinstance(e, ev.PointsRedeemed) and lot.expires_on and lot.expires_on < day - ONE_DAY:
        return f"points redeemed from lot {lot.lot_id} after it expired"
    if isinstance(e, ev.PointsExpired) and (lot.expires_on is None or lot.expires_on > day):
        return f"lot {lot.lot_id} expired before its expiry date"
    return None


def _tier(c: Customer, e: ev.TierChanged) -> str | None:
    if e.from_tier != c.tier or e.to_tier == c.tier:
        return f"a tier change from {e.from_tier} while the tier is {c.tier}"
    return None


def _scheduled(c: Customer, e: ev.CareTaskScheduled) -> str | None:
    return f"care task {e.task_id!r} scheduled twice" if e.task_id in c.care_tasks else None


def _task_step(c: Customer, e: ev.CareTaskCompleted | ev.CareTaskCancelled) -> str | None:
    task = c.care_tasks.get(e.task_id)
    if task is None or task.status != "scheduled":
        return f"care task {e.task_id!r} is not open"
    return None


def _churned(c: Customer, e: ev.CustomerChurned) -> str | None:
    return "churned while churned" if c.churned else None


def _won_back(c: Customer, e: ev.CustomerWonBack) -> str | None:
    return None if c.churned else "won back while not churned"


def _stage(stage: str, probability: int) -> str | None:
    """Any stage key at a percentage: the source store's pipeline may differ from this one's."""
    if not is_stage_key(stage) or not 0 <= probability <= 100:
        return f"a stage {stage!r} at {probability}% that no pipeline holds"
    return None


def _opened(c: Customer, e: ev.OpportunityOpened) -> str | None:
    if e.opportunity_id in c.opportunities:
        return f"opportunity {e.opportunity_id!r} opened twice"
    return _stage(e.stage, e.probability) or _money(e.amount, e.currency)


def _opportunity_step(
    c: Customer, e: ev.OpportunityAdvanced | ev.OpportunityWon | ev.OpportunityLost
) -> str | None:
    opportunity = c.opportunities.get(e.opportunity_id)
    if opportunity is None:
        return f"a step of unknown opportunity {e.opportunity_id!r}"
    if not opportunity.is_open:
        return f"a step of opportunity {e.opportunity_id!r} after it was {opportunity.status}"
    if isinstance(e, ev.OpportunityAdvanced):
        return _stage(e.stage, e.probability)
    if isinstance(e, ev.OpportunityWon) and e.order_id is not None and e.order_id not in c.orders:
        return f"opportunity {e.opportunity_id!r} won as unknown order {e.order_id!r}"
    return None


# What a closed duplicate still takes (crm_es.domain.decide.merges.STILL_ALLOWED_WHEN_MERGED).
_AFTER_MERGE: Final = (ev.PersonalDataErased, ev.PurchaseRefunded)


def _merged(c: Customer, e: ev.CustomersMerged) -> str | None:
    if c.id not in (e.duplicate_id, e.survivor_id) or e.duplicate_id == e.survivor_id:
        return "a merge that names neither side as this customer, or the same customer twice"
    if c.erased:
        return "a merge of an erased customer"
    if e.duplicate_id in c.absorbed:
        return f"customer {e.duplicate_id} absorbed twice"
    if e.occurred_at < latest_time(c):
        return "a merge dated before the customer's latest event"
    return None if e.points_moved >= 0 else f"{e.points_moved} points moved"


def _erased(c: Customer, e: ev.PersonalDataErased) -> str | None:
    return "erased twice" if c.erased else None


_RULES: Final[dict[type[ev.CustomerEvent], Callable[[Customer, Any], str | None]]] = {
    ev.PurchaseRecorded: _purchase,
    ev.PurchaseRefunded: _refund,
    ev.ServiceRecorded: _service,
    ev.ComplaintFiled: _filed,
    ev.ComplaintEscalated: _complaint("escalation", ("open", "escalated")),
    ev.ComplaintResolved: _both(_complaint("resolution", ("open", "escalated")), _resolved),
    ev.ComplaintReopened: _complaint("reopening", ("resolved",)),
    ev.ComplaintFollowedUp: _complaint("follow-up", ("resolved",)),
    ev.SurveyAnswered: _survey,
    ev.PointsGranted: _granted,
    ev.PointsRedeemed: _drawn,
    ev.PointsExpired: _drawn,
    ev.TierChanged: _tier,
    ev.CareTaskScheduled: _scheduled,
    ev.CareTaskCompleted: _task_step,
    ev.CareTaskCancelled: _task_step,
    ev.CustomerChurned: _churned,
    ev.CustomerWonBack: _won_back,
    ev.PersonalDataErased: _erased,
    ev.CustomersMerged: _merged,
    ev.OpportunityOpened: _opened,
    ev.OpportunityAdvanced: _opportunity_step,
    ev.OpportunityWon: _opportunity_step,
    ev.OpportunityLost: _opportunity_step,
}
