"""Decide: command + current state -> new events, or a CrmError. Pure: no I/O, no clock.

Every rule of design §4 is checked here, before any event exists, so a rejected command stores
nothing. The caller supplies an :class:`Envelope` (recorded time, business time, who, why), and
gets back events numbered from ``customer.version + 1``, ready to save in one transaction.

:func:`decide` is the entry point: its ``_DECIDERS`` table maps every command type to one decider.
The deciders of the customer record, purchases, tier, loyalty points, churn and erasure live
here; the after-sales ones (service records, complaints, surveys, care tasks) live in
:mod:`crm_es.domain.decide.after_sales`, the sales opportunities' in
:mod:`crm_es.domain.decide.opportunities`. :class:`Envelope` and the event batch come from
:mod:`crm_es.domain.decide.envelope`, shared by both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.business_order import order_problem
from crm_es.domain.customer import Customer, PointsLot
from crm_es.domain.decide import after_sales, opportunities
from crm_es.domain.decide.category_moves import after_first_purchase
from crm_es.domain.decide.envelope import Batch as _Batch
from crm_es.domain.decide.envelope import Envelope
from crm_es.domain.decide.merges import refuse_if_merged
from crm_es.domain.decide.purchase_rules import tier_review, tier_spend_delta, wins_back
from crm_es.domain.errors import (
    CustomerErased,
    CustomerNotFound,
    DuplicateId,
    InsufficientPoints,
    InvalidState,
    InvalidValue,
    RefundExceedsPaid,
    UnknownId,
)
from crm_es.domain.personal_fields import holds_personal_data
from crm_es.domain.values import TIER_CURRENCY, Money, format_minor

__all__ = ["Envelope", "decide"]


def decide(
    customer: Customer | None, command: cmd.Command, envelope: Envelope, customer_id: UUID
) -> list[ev.CustomerEvent]:
    """The events ``command`` produces against ``customer`` (None if not registered yet)."""
    if isinstance(command, cmd.RegisterCustomer):
        batch = _Batch(customer_id, 0, envelope)
        _register(batch, command)
        return batch.events
    if customer is None:
        raise CustomerNotFound(getattr(command, "customer", str(customer_id)))
    refuse_if_merged(customer, command)
    batch = _Batch(customer.id, customer.version, envelope)
    _DECIDERS[type(command)](customer, command, batch)
    for event in batch.events:
        why = order_problem(customer, event)
        if why is not None:
            raise InvalidValue("occurred_at", event.occurred_at.isoformat(), why)
    if customer.erased:
        for event in batch.events:
            if holds_personal_data(event):
                raise CustomerErased(customer.id, f"store personal data ({type(command).__name__})")
    return batch.events


def _register(b: _Batch, c: cmd.RegisterCustomer) -> None:
    b.add(
        ev.CustomerRegistered,
        external_ref=c.external_ref,
        kind=c.kind,
        category=c.category,
        region=c.region,
        industry=c.industry,
        company_size=c.company_size,
        income_band=c.income_band,
        source_channel=c.source_channel,
        name=c.name,
        email=c.email,
        phone=c.phone,
        birthday=c.birthday.isoformat() if c.birthday else None,
    )
    if c.owner is not None:
        b.add(ev.OwnerAssigned, owner=c.owner)
    if c.tags:
        b.add(ev.TagsChanged, added=sorted(set(c.tags)), removed=[])


def _update_profile(cu: Customer, c: cmd.UpdateProfile, b: _Batch) -> None:
    changes: dict[str, Any] = {}
    for field in c.__struct_fields__:
        if field in cmd.CustomerCommand.__struct_fields__:
            continue
        value = getattr(c, field)
        if value is msgspec.UNSET:
            continue
        if field == "birthday" and value is not None:
            value = value.isoformat()
        # A change dated before the field's last one is history even when the value is the
        # current one (the value as of an earlier date).
        if getattr(cu, field) != value or cu.changed_since(field, b.envelope.occurred_at):
            changes[field] = value
    if changes:
        b.add(ev.ProfileUpdated, **changes)


def _change_tags(cu: Customer, c: cmd.ChangeTags, b: _Batch) -> None:
    both = set(c.add) & set(c.remove)
    if both:
        raise InvalidValue("tags", sorted(both), "a tag cannot be both added and removed")
    added = sorted(set(c.add) - set(cu.tags))
    removed = sorted(set(c.remove) & set(cu.tags))
    if added or removed:
        b.add(ev.TagsChanged, added=added, removed=removed)


def _assign_owner(cu: Customer, c: cmd.AssignOwner, b: _Batch) -> None:
    if cu.owner != c.owner or cu.changed_since("owner", b.envelope.occurred_at):
        b.add(ev.OwnerAssigned, owner=c.owner)


def _change_consent(cu: Customer, c: cmd.ChangeConsent, b: _Batch) -> None:
    b.add(ev.ConsentChanged, marketing=c.marketing, lawful_basis=c.lawful_basis)


def _log_contact(cu: Customer, c: cmd.LogContact, b: _Batch) -> None:
    b.add(
        ev.ContactLogged,
        channel=c.channel,
        direction=c.direction,
        summary=c.summary,
        outcome=c.outcome,
        feedback=c.feedback,
        staff=c.staff,
    )


def _record_purchase(cu: Customer, c: cmd.RecordPurchase, b: _Batch) -> None:
    money = Money.parse(c.amount, c.currency)
    if c.order_id in cu.orders:
        raise DuplicateId("order", c.order_id, cu.id)
    items = (
        [ev.LineItem(sku=i.sku, quantity=i.quantity, name=i.name) for i in c.items]
        if c.items
        else []
    )
    b.add(
        ev.PurchaseRecorded,
        order_id=c.order_id,
        amount=money.minor,
        currency=money.currency,
        items=items,
        product_category=c.product_category,
        channel=c.channel,
        staff=c.staff,
    )
    if wins_back(cu, b.envelope.occurred_at):
        b.add(ev.CustomerWonBack)
    _review_tier(cu, b, tier_spend_delta(money.minor, money.currency))
    after_first_purchase(cu, b)


def _refund_purchase(cu: Customer, c: cmd.RefundPurchase, b: _Batch) -> None:
    order = cu.orders.get(c.order_id)
    if order is None:
        raise UnknownId("order", c.order_id, cu.id)
    if c.currency is not None and c.currency != order.currency:
        raise InvalidValue(
            "currency", c.currency, f"order {c.order_id!r} was paid in {order.currency}"
        )
    refundable = order.amount - order.refunded
    minor = refundable if c.amount is None else Money.parse(c.amount, order.currency).minor
    if minor <= 0:
        raise InvalidValue("amount", format_minor(minor, order.currency), "refund must be positive")
    if minor > refundable:
        raise RefundExceedsPaid(
            c.order_id,
            f"{format_minor(minor, order.currency)} {order.currency}",
            f"{format_minor(refundable, order.currency)} {order.currency}",
        )
    b.add(ev.PurchaseRefunded, order_id=c.order_id, amount=minor, currency=order.currency)
    if cu.merged_into is not None:
        return  # a closed duplicate's tier counts for no one: the survivor's stands
    window_start = b.envelope.occurred_at - timedelta(days=365)
    in_window = order.currency == TIER_CURRENCY and order.occurred_at > window_start
    _review_tier(cu, b, -minor if in_window else 0)


def _review_tier(cu: Customer, b: _Batch, delta: int) -> None:
    """A tier change when the rolling 12-month net spend moves the tier (see
    :func:`~crm_es.domain.decide.purchase_rules.tier_review`)."""
    change = tier_review(cu, b.envelope.occurred_at, delta)
    if change is not None:
        tier, spend = change
        b.add(ev.TierChanged, from_tier=cu.tier, to_tier=tier, rolling_spend=spend)


def _review_tier_command(cu: Customer, c: cmd.ReviewTier, b: _Batch) -> None:
    _review_tier(cu, b, 0)


def _grant_points(cu: Customer, c: cmd.GrantPoints, b: _Batch) -> None:
    if c.expires_on is not None and c.expires_on <= b.envelope.day:
        raise InvalidValue("expires_on", c.expires_on.isoformat(), "must be after the grant date")
    b.add(
        ev.PointsGranted,
        lot_id=b.version + 1,
        points=c.points,
        expires_on=c.expires_on,
        grant_reason=c.reason,
    )


def _granted_by(lot: PointsLot, b: _Batch) -> bool:
    """Whether ``lot`` had been granted by the command's business time."""
    return lot.granted_at is None or lot.granted_at <= b.envelope.occurred_at


def _expired_draws(cu: Customer, b: _Batch) -> list[ev.PointsDraw]:
    today = b.envelope.day
    return [
        ev.PointsDraw(lot.lot_id, lot.remaining)
        for lot in cu.lots
        if lot.expires_on is not None
        and lot.expires_on < today
        and lot.remaining > 0
        and _granted_by(lot, b)
    ]


def _expire_points(cu: Customer, c: cmd.ExpirePoints, b: _Batch) -> None:
    draws = _expired_draws(cu, b)
    if draws:
        b.add(ev.PointsExpired, points=sum(d.points for d in draws), draws=draws)


def _redeem_points(cu: Customer, c: cmd.RedeemPoints, b: _Batch) -> None:
    expired = _expired_draws(cu, b)
    expired_ids = {d.lot_id for d in expired}
    live = [
        lot
        for lot in cu.lots
        if lot.lot_id not in expired_ids and lot.remaining > 0 and _granted_by(lot, b)
    ]
    available = sum(lot.remaining for lot in live)
    if c.points > available:
        raise InsufficientPoints(c.points, available)
    if expired:
        b.add(ev.PointsExpired, points=sum(d.points for d in expired), draws=expired)
    # Soonest-expiring first; lots that never expire go last; ties by grant order.
    live.sort(key=lambda lot: (lot.expires_on is None, lot.expires_on, lot.lot_id))
    draws, needed = [], c.points
    for lot in live:
        take = min(needed, lot.remaining)
        draws.append(ev.PointsDraw(lot.lot_id, take))
        needed -= take
        if needed == 0:
            break
    b.add(ev.PointsRedeemed, points=c.points, reward=c.reward, draws=draws)


def _churn_customer(cu: Customer, c: cmd.ChurnCustomer, b: _Batch) -> None:
    if cu.churned:
        raise InvalidState(f"customer {cu.id} is already churned")
    b.add(ev.CustomerChurned, churn_reason=c.churn_reason)


def _win_back_customer(cu: Customer, c: cmd.WinBackCustomer, b: _Batch) -> None:
    if not cu.churned:
        raise InvalidState(f"customer {cu.id} is not churned, so cannot be won back")
    b.add(ev.CustomerWonBack)


def _erase_personal_data(cu: Customer, c: cmd.ErasePersonalData, b: _Batch) -> None:
    if cu.erased:
        raise InvalidState(f"customer {cu.id} has already been erased; nothing to do")
    b.add(ev.PersonalDataErased, requested_by=c.requested_by, legal_basis=c.legal_basis)


_DECIDERS: Final[dict[type[cmd.Command], Callable[[Customer, Any, _Batch], None]]] = {
    cmd.UpdateProfile: _update_profile,
    cmd.ChangeTags: _change_tags,
    cmd.AssignOwner: _assign_owner,
    cmd.ChangeConsent: _change_consent,
    cmd.LogContact: _log_contact,
    cmd.RecordPurchase: _record_purchase,
    cmd.RefundPurchase: _refund_purchase,
    cmd.RecordService: after_sales.record_service,
    cmd.OpenOpportunity: opportunities.open_opportunity,
    cmd.AdvanceOpportunity: opportunities.advance_opportunity,
    cmd.WinOpportunity: opportunities.win_opportunity,
    cmd.LoseOpportunity: opportunities.lose_opportunity,
    cmd.FileComplaint: after_sales.file_complaint,
    cmd.EscalateComplaint: after_sales.escalate_complaint,
    cmd.ResolveComplaint: after_sales.resolve_complaint,
    cmd.ReopenComplaint: after_sales.reopen_complaint,
    cmd.FollowUpComplaint: after_sales.follow_up_complaint,
    cmd.AnswerSurvey: after_sales.answer_survey,
    cmd.GrantPoints: _grant_points,
    cmd.RedeemPoints: _redeem_points,
    cmd.ExpirePoints: _expire_points,
    cmd.ReviewTier: _review_tier_command,
    cmd.ScheduleCareTask: after_sales.schedule_care_task,
    cmd.CompleteCareTask: after_sales.complete_care_task,
    cmd.CancelCareTask: after_sales.cancel_care_task,
    cmd.ChurnCustomer: _churn_customer,
    cmd.WinBackCustomer: _win_back_customer,
    cmd.ErasePersonalData: _erase_personal_data,
}
# A merge decides on two streams at once (crm_es.domain.decide.merges.decide_merge); plan
# commands are decided on the plan (domain/decide/goals.py).
_TWO_STREAMS: Final = {cmd.MergeCustomers}
assert set(_DECIDERS) | {cmd.RegisterCustomer} | _TWO_STREAMS == {
    c for c in cmd.COMMAND_TYPES.values() if not issubclass(c, cmd.PlanCommand)
}
