"""The Customer aggregate: its state, and how each event evolves it.

The state is a msgspec Struct, so a snapshot is its msgpack encoding and "reloaded equals in
memory" is plain ``==``. Evolution (``apply``) never fails and never decides anything: every rule is
checked in :mod:`crm_es.domain.decide.decisions` before an event exists. The aggregate satisfies the
``eventsourcing`` aggregate protocol (``id``, ``version``): the library's stores load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from crm_es.domain import events as ev
from crm_es.domain.merge_events import MERGE_EVOLVERS
from crm_es.domain.opportunity import OPPORTUNITY_EVOLVERS, Opportunity
from crm_es.domain.values import (
    TIER_CURRENCY,
    Category,
    Channel,
    CustomerKind,
    Severity,
    Tier,
    tier_for_spend,
)

ROLLING_TIER_WINDOW = timedelta(days=365)


class Order(msgspec.Struct, kw_only=True):
    amount: int
    currency: str
    occurred_at: datetime
    refunded: int = 0


class Complaint(msgspec.Struct, kw_only=True):
    category: str
    severity: Severity
    filed_at: datetime
    sla_due: datetime
    status: str = "open"  # open | escalated | resolved
    resolved_at: datetime | None = None
    reopen_count: int = 0
    followed_up_satisfied: bool | None = None
    last_step_at: datetime | None = None  # business time of its latest step (None: schema 4)


class PointsLot(msgspec.Struct, kw_only=True):
    lot_id: int
    remaining: int
    expires_on: date | None = None
    granted_at: datetime | None = None  # None in a state restored from schema 4


class CareTask(msgspec.Struct, kw_only=True):
    kind: str
    due_on: date
    scheduled_at: datetime | None = None  # None in a state restored from schema 3
    status: str = "scheduled"  # scheduled | completed | cancelled
    staff: str | None = None


class Customer(msgspec.Struct, kw_only=True, gc=False):
    """Current state of one customer, evolved only by its events."""

    id: UUID
    version: int = 0
    registered_recorded_at: datetime  # knowledge time of the registration
    last_recorded_at: datetime  # knowledge time of the last event
    registered_at: datetime  # business time of registration
    external_ref: str | None = None
    kind: CustomerKind = CustomerKind.INDIVIDUAL
    category: Category = Category.POTENTIAL
    region: str | None = None
    industry: str | None = None
    company_size: str | None = None
    income_band: str | None = None
    source_channel: Channel | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: str | None = None
    owner: str | None = None
    tags: list[str] = []
    marketing_consent: bool | None = None
    lawful_basis: str | None = None
    contacts: int = 0
    last_contact_at: datetime | None = None
    services: int = 0
    orders: dict[str, Order] = {}
    paid: dict[str, int] = {}  # currency -> minor units
    refunded: dict[str, int] = {}
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    complaints: dict[str, Complaint] = {}
    surveys_answered: list[str] = []
    lots: list[PointsLot] = []
    points_balance: int = 0
    tier: Tier = Tier.STANDARD
    care_tasks: dict[str, CareTask] = {}
    opportunities: dict[str, Opportunity] = {}  # sales opportunities by id, open or closed
    # Business time of the latest fact of each kind. An attribute change back-dated before
    # the last one is history, not the current value (as the reports read attributes); tier,
    # points and churn changes are only ever recorded forward of theirs (see decide).
    attribute_times: dict[str, datetime] = {}
    tier_since: datetime | None = None  # purchases, refunds and tier changes
    points_since: datetime | None = None  # grants, redemptions and expiries
    churn_since: datetime | None = None  # churns and win-backs
    churned: bool = False
    churned_at: datetime | None = None
    churn_reason: str | None = None
    won_back_count: int = 0
    erased: bool = False
    merged_into: UUID | None = None  # a duplicate closed by a merge: its survivor
    absorbed: list[UUID] = []  # the duplicates merged into this one (see merge_events)

    @classmethod
    def created_by(cls, event: ev.CustomerEvent) -> Customer:
        if not isinstance(event, ev.CustomerRegistered):
            msg = f"stream {event.originator_id} does not start with CustomerRegistered"
            raise ValueError(msg)
        return cls(
            id=event.originator_id,
            registered_recorded_at=event.recorded_at,
            last_recorded_at=event.recorded_at,
            registered_at=event.occurred_at,
        )

    # --- queries used by decisions and views ----------------------------------------------------

    def rolling_spend(self, at: datetime, currency: str = TIER_CURRENCY) -> int:
        """Net spend in ``currency`` on orders that occurred in the 12 months up to ``at``."""
        since = at - ROLLING_TIER_WINDOW
        return sum(
            o.amount - o.refunded
            for o in self.orders.values()
            if o.currency == currency and since < o.occurred_at <= at
        )

    def tier_at(self, at: datetime) -> Tier:
        """The tier by the rolling 12-month rule as of ``at``: it falls as old orders leave the
        window, with or without a ``TierChanged`` event (``tier`` is the last one recorded)."""
        return tier_for_spend(self.rolling_spend(at))

    def live_lots(self, day: date, at: datetime | None = None) -> list[PointsLot]:
        """The lots that can still be redeemed on ``day`` (at business time ``at``: granted by
        then): a lot is good through its ``expires_on``, whether or not a ``PointsExpired``
        event has been recorded since."""
        return [
            lot
            for lot in self.lots
            if lot.remaining > 0
            and (lot.expires_on is None or lot.expires_on >= day)
            and (at is None or lot.granted_at is None or lot.granted_at <= at)
        ]

    def changed_since(self, field: str, at: datetime) -> bool:
        """Whether ``field`` got its current value at a business time after ``at`` (a change
        dated ``at`` is then history, not the current value)."""
        since = self.attribute_times.get(field)
        return since is not None and since > at

    def points_available(self, day: date) -> int:
        return sum(lot.remaining for lot in self.live_lots(day))

    def open_complaints(self) -> dict[str, Complaint]:
        return {k: c for k, c in self.complaints.items() if c.status != "resolved"}

    def open_care_tasks(self) -> dict[str, CareTask]:
        return {k: t for k, t in self.care_tasks.items() if t.status == "scheduled"}

    # --- evolution --------------------------------------------------------------------------------

    def apply(self, event: ev.CustomerEvent) -> None:
        _EVOLVERS[type(event)](self, event)
        self.version = event.originator_version
        self.last_recorded_at = event.recorded_at


def evolve(customer: Customer | None, events: Iterable[ev.CustomerEvent]) -> Customer | None:
    """``customer`` (None before its registration) after ``events``, in stream order. Changes
    ``customer`` in place: pass a copy to keep the original."""
    for event in events:
        if customer is None:
            customer = Customer.created_by(event)
        customer.apply(event)
    return customer


def _registered(c: Customer, e: ev.CustomerRegistered) -> None:
    c.external_ref = e.external_ref
    c.kind, c.category, c.region, c.industry = e.kind, e.category, e.region, e.industry
    c.company_size, c.income_band = e.company_size, e.income_band
    c.source_channel = e.source_channel
    c.name, c.email, c.phone, c.birthday = e.name, e.email, e.phone, e.birthday
    given = [f for f in _PROFILE_FIELDS if getattr(c, f) is not None]
    c.attribute_times = dict.fromkeys(given, e.occurred_at)  # as the reports keep its facts


def _set(c: Customer, field: str, value: object, at: datetime) -> None:
    """``field`` takes ``value`` unless it changed at a later business time already."""
    if not c.changed_since(field, at):
        setattr(c, field, value)
        c.attribute_times[field] = at


def _profile_updated(c: Customer, e: ev.ProfileUpdated) -> None:
    for field in e.__struct_fields__:
        if field in _PROFILE_FIELDS:
            value = getattr(e, field)
            if value is not msgspec.UNSET:
                _set(c, field, value, e.occurred_at)


_PROFILE_FIELDS = frozenset(
    f for f in ev.ProfileUpdated.__struct_fields__ if f not in ev.CustomerEvent.__struct_fields__
)


def _tags_changed(c: Customer, e: ev.TagsChanged) -> None:
    c.tags = sorted((set(c.tags) | set(e.added)) - set(e.removed))


def _owner_assigned(c: Customer, e: ev.OwnerAssigned) -> None:
    _set(c, "owner", e.owner, e.occurred_at)


def _consent_changed(c: Customer, e: ev.ConsentChanged) -> None:
    if not c.changed_since("consent", e.occurred_at):
        c.marketing_consent, c.lawful_basis = e.marketing, e.lawful_basis
        c.attribute_times["consent"] = e.occurred_at


def _later(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _contact_logged(c: Customer, e: ev.ContactLogged) -> None:
    c.contacts += 1
    if c.last_contact_at is None or e.occurred_at > c.last_contact_at:
        c.last_contact_at = e.occurred_at


def _purchase_recorded(c: Customer, e: ev.PurchaseRecorded) -> None:
    c.orders[e.order_id] = Order(amount=e.amount, currency=e.currency, occurred_at=e.occurred_at)
    c.paid[e.currency] = c.paid.get(e.currency, 0) + e.amount
    if c.first_purchase_at is None or e.occurred_at < c.first_purchase_at:
        c.first_purchase_at = e.occurred_at
    if c.last_purchase_at is None or e.occurred_at > c.last_purchase_at:
        c.last_purchase_at = e.occurred_at
    c.tier_since = _later(c.tier_since, e.occurred_at)


def _purchase_refunded(c: Customer, e: ev.PurchaseRefunded) -> None:
    c.orders[e.order_id].refunded += e.amount
    c.refunded[e.currency] = c.refunded.get(e.currency, 0) + e.amount
    c.tier_since = _later(c.tier_since, e.occurred_at)


def _service_recorded(c: Customer, e: ev.ServiceRecorded) -> None:
    c.services += 1


def _complaint_filed(c: Customer, e: ev.ComplaintFiled) -> None:
    c.complaints[e.complaint_id] = Complaint(
        category=e.category, severity=e.severity, filed_at=e.occurred_at, sla_due=e.sla_due,
        last_step_at=e.occurred_at,
    )  # fmt: skip


def _complaint_step(c: Customer, complaint_id: str, at: datetime) -> Complaint:
    complaint = c.complaints[complaint_id]
    complaint.last_step_at = _later(complaint.last_step_at, at)
    return complaint


def _complaint_escalated(c: Customer, e: ev.ComplaintEscalated) -> None:
    _complaint_step(c, e.complaint_id, e.occurred_at).status = "escalated"


def _complaint_resolved(c: Customer, e: ev.ComplaintResolved) -> None:
    complaint = _complaint_step(c, e.complaint_id, e.occurred_at)
    complaint.status, complaint.resolved_at = "resolved", e.occurred_at


def _complaint_reopened(c: Customer, e: ev.ComplaintReopened) -> None:
    complaint = _complaint_step(c, e.complaint_id, e.occurred_at)
    complaint.status, complaint.resolved_at = "open", None
    complaint.reopen_count += 1
    complaint.followed_up_satisfied = None


def _complaint_followed_up(c: Customer, e: ev.ComplaintFollowedUp) -> None:
    _complaint_step(c, e.complaint_id, e.occurred_at).followed_up_satisfied = e.satisfied


def _survey_answered(c: Customer, e: ev.SurveyAnswered) -> None:
    c.surveys_answered.append(e.survey_id)


def _points_granted(c: Customer, e: ev.PointsGranted) -> None:
    lot = PointsLot(
        lot_id=e.lot_id, remaining=e.points, expires_on=e.expires_on, granted_at=e.occurred_at
    )
    c.lots.append(lot)
    c.points_balance += e.points
    c.points_since = _later(c.points_since, e.occurred_at)


def _points_drawn(c: Customer, e: ev.PointsRedeemed | ev.PointsExpired) -> None:
    by_id = {lot.lot_id: lot for lot in c.lots}
    for draw in e.draws:
        by_id[draw.lot_id].remaining -= draw.points
    c.lots = [lot for lot in c.lots if lot.remaining > 0]
    c.points_balance -= e.points
    c.points_since = _later(c.points_since, e.occurred_at)


def _tier_changed(c: Customer, e: ev.TierChanged) -> None:
    c.tier = e.to_tier
    c.tier_since = _later(c.tier_since, e.occurred_at)


def _care_task_scheduled(c: Customer, e: ev.CareTaskScheduled) -> None:
    c.care_tasks[e.task_id] = CareTask(
        kind=e.kind, due_on=e.due_on, scheduled_at=e.occurred_at, staff=e.staff
    )


def _care_task_completed(c: Customer, e: ev.CareTaskCompleted) -> None:
    c.care_tasks[e.task_id].status = "completed"


def _care_task_cancelled(c: Customer, e: ev.CareTaskCancelled) -> None:
    c.care_tasks[e.task_id].status = "cancelled"


def _churned(c: Customer, e: ev.CustomerChurned) -> None:
    c.churned, c.churned_at, c.churn_reason = True, e.occurred_at, e.churn_reason
    c.churn_since = _later(c.churn_since, e.occurred_at)


def _won_back(c: Customer, e: ev.CustomerWonBack) -> None:
    c.churned, c.churned_at, c.churn_reason = False, None, None
    c.won_back_count += 1
    c.churn_since = _later(c.churn_since, e.occurred_at)


def _erased(c: Customer, e: ev.PersonalDataErased) -> None:
    c.erased = True
    c.name = c.email = c.phone = c.birthday = c.churn_reason = None
    c.tags = []


_EVOLVERS: dict[type[ev.CustomerEvent], Callable[[Customer, Any], None]] = {
    ev.CustomerRegistered: _registered,
    ev.ProfileUpdated: _profile_updated,
    ev.TagsChanged: _tags_changed,
    ev.OwnerAssigned: _owner_assigned,
    ev.ConsentChanged: _consent_changed,
    ev.ContactLogged: _contact_logged,
    ev.PurchaseRecorded: _purchase_recorded,
    ev.PurchaseRefunded: _purchase_refunded,
    ev.ServiceRecorded: _service_recorded,
    ev.ComplaintFiled: _complaint_filed,
    ev.ComplaintEscalated: _complaint_escalated,
    ev.ComplaintResolved: _complaint_resolved,
    ev.ComplaintReopened: _complaint_reopened,
    ev.ComplaintFollowedUp: _complaint_followed_up,
    ev.SurveyAnswered: _survey_answered,
    ev.PointsGranted: _points_granted,
    ev.PointsRedeemed: _points_drawn,
    ev.PointsExpired: _points_drawn,
    ev.TierChanged: _tier_changed,
    ev.CareTaskScheduled: _care_task_scheduled,
    ev.CareTaskCompleted: _care_task_completed,
    ev.CareTaskCancelled: _care_task_cancelled,
    ev.CustomerChurned: _churned,
    ev.CustomerWonBack: _won_back,
    ev.PersonalDataErased: _erased,
    **OPPORTUNITY_EVOLVERS,
    **MERGE_EVOLVERS,
}
assert set(_EVOLVERS) == set(ev.CUSTOMER_EVENT_TYPES), "every customer event needs an evolver"


# The state's personal fields: blanked by an erasure, carried encrypted beside a snapshot.
PERSONAL_STATE_FIELDS = ("name", "email", "phone", "birthday", "tags", "churn_reason")


def without_personal_data(customer: Customer) -> Customer:
    """``customer`` with every personal field blank: what two erased states compare on."""
    return msgspec.structs.replace(
        customer, name=None, email=None, phone=None, birthday=None, tags=[], churn_reason=None
    )
