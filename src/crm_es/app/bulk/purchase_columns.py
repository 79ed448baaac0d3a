"""The columnar purchase decision of a bulk chunk: the ``record_purchase`` commands of customers
it can prove it models exactly, decided without the per-command machinery.

A chunk of an import is almost all purchases. Deciding each through
:class:`~crm_es.app.command_unit.CommandUnit` builds an envelope, checks the policy, dispatches,
numbers the events in a batch, checks business-time order and personal data, and evolves the
state through :func:`~crm_es.domain.customer.evolve`: most of the deciding CPU of an import.
Here the chunk's purchases are first checked as columns (:func:`plan`: money, times, duplicate
orders and command ids, the principal, the customers' states), then each is decided by the
rules of :mod:`crm_es.domain.decide.purchase_rules`, the ones the single command runs too
(won-back, the rolling 12-month tier window), into the same events, applied by the same
evolvers, recorded and encoded by the same code: the stored rows, records and outcomes are
byte for byte those of the command path (tests/integration/app/test_purchase_columns.py checks
that on generated chunks).

Anything :func:`plan` cannot prove goes to the command path, customer by customer for the whole
chunk (so each customer's commands keep their order on one path): a customer with any other
command in the chunk, a purchase with line items, a reason (personal data, enciphered), an actor
or an on-behalf-of, a command id seen before or twice, an amount, currency or time the command
path would refuse, an order id it already has, a customer not registered, erased, buying for
the first time (its category may move), churned in a way the won-back rule cannot judge alone,
or in any state this module does not know of (a state field added after it, away from its
default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide.envelope import EARLIEST_BUSINESS_TIME, FUTURE_SKEW
from crm_es.domain.decide.purchase_rules import tier_review, tier_spend_delta, wins_back
from crm_es.domain.errors import CrmError
from crm_es.domain.values import Money

# The state fields this module was written against. A field added later (a merged or closed
# customer, say) is modelled only at its default: a customer with it set goes to the command path.
MODELLED_STATE_FIELDS: Final = frozenset({
    "id", "version", "registered_recorded_at", "last_recorded_at", "registered_at",
    "external_ref", "kind", "category", "region", "industry", "company_size", "income_band",
    "source_channel", "name", "email", "phone", "birthday", "owner", "tags",
    "marketing_consent", "lawful_basis", "contacts", "last_contact_at", "services", "orders",
    "paid", "refunded", "first_purchase_at", "last_purchase_at", "complaints",
    "surveys_answered", "lots", "points_balance", "tier", "care_tasks", "opportunities",
    "attribute_times", "tier_since", "points_since", "churn_since", "churned", "churned_at",
    "churn_reason", "won_back_count", "erased",
})  # fmt: skip


def _unmodelled_defaults() -> tuple[tuple[str, Any], ...]:
    found = []
    for field in msgspec.structs.fields(Customer):
        if field.name not in MODELLED_STATE_FIELDS:
            default = field.default
            if default is msgspec.NODEFAULT and field.default_factory is not msgspec.NODEFAULT:
                default = field.default_factory()
            found.append((field.name, default))
    return tuple(found)


_UNMODELLED: Final = _unmodelled_defaults()


def models(cu: Customer | None) -> bool:
    """Whether the columnar decision decides a purchase on ``cu`` exactly as the command path
    would, whatever the purchase (those it refuses are left out by :func:`plan`)."""
    if cu is None or cu.erased or not cu.orders:
        return False  # not registered, erased, or a first purchase (it may move the category)
    # A purchase that wins the customer back is refused by the command path when dated before
    # the last churn or win-back; proven never to happen when that is the churn itself.
    if cu.churned and (
        cu.churned_at is None or (cu.churn_since is not None and cu.churn_since > cu.churned_at)
    ):
        return False
    return all(getattr(cu, name) == default for name, default in _UNMODELLED)


def _simple(c: cmd.Command) -> bool:
    """A purchase whose event the columnar decision can build: nothing but the purchase."""
    return (
        type(c) is cmd.RecordPurchase
        and not c.items
        and c.reason is None
        and c.actor is None
        and not isinstance(c.on_behalf_of, str)
    )


def plan(
    commands: Sequence[cmd.Command],
    targets: Sequence[UUID | None],
    done: dict[str, Any],
    state_of: Callable[[UUID], Customer | None],
    may_send: Callable[[cmd.Command, Customer | None], None],
    now: datetime,
) -> list[int | None]:
    """For each command, the minor units of the purchase the columnar decision takes, or None
    for one the command path decides. ``done``: command ids already recorded; ``state_of``:
    the state a customer's first command in the chunk is decided on."""
    counts: dict[str, int] = {}
    for c in commands:
        if c.command_id is not None:
            counts[c.command_id] = counts.get(c.command_id, 0) + 1
    minors: list[int | None] = [None] * len(commands)
    refused: set[int] = set()  # customers (``UUID.int``) left to the command path
    orders: dict[int, set[str]] = {}  # order ids each customer has, with the chunk's so far
    latest = now + FUTURE_SKEW
    parsed: dict[tuple[Decimal | str, str], int | None] = {}  # prices repeat: each parsed once
    for i, (c, target) in enumerate(zip(commands, targets, strict=True)):
        if target is None:
            continue
        key = target.int
        if key in refused:
            continue
        if not _simple(c) or (c.command_id is not None and (
            counts[c.command_id] > 1 or c.command_id in done
        )):  # fmt: skip
            refused.add(key)
            continue
        assert isinstance(c, cmd.RecordPurchase)
        seen = orders.get(key)
        if seen is None:
            state = state_of(target)
            if not models(state):
                refused.add(key)
                continue
            assert state is not None
            try:
                may_send(c, state)
            except CrmError:
                refused.add(key)
                continue
            seen = orders[key] = set(state.orders)
        at = c.occurred_at or now
        if at.tzinfo is None or at > latest or at < EARLIEST_BUSINESS_TIME or c.order_id in seen:
            refused.add(key)
            continue
        minor = _minor_units(c.amount, c.currency, parsed)
        if minor is None:
            refused.add(key)
            continue
        minors[i] = minor
        seen.add(c.order_id)
    if refused:
        for i, target in enumerate(targets):
            if minors[i] is not None and target is not None and target.int in refused:
                minors[i] = None
    return minors


def _minor_units(
    amount: Decimal | str, currency: str, parsed: dict[tuple[Decimal | str, str], int | None]
) -> int | None:
    """``Money.parse(amount, currency).minor``, None where it refuses the amount. Equal
    decimals (``1.0``, ``1.00``) are one number, so they parse alike."""
    if isinstance(amount, Decimal) and not amount.is_finite():  # a NaN hashes by identity
        return _parse(amount, currency)
    key = (amount, currency)
    if key in parsed:
        return parsed[key]
    minor = parsed[key] = _parse(amount, currency)
    return minor


def _parse(amount: Decimal | str, currency: str) -> int | None:
    try:
        return Money.parse(amount, currency).minor
    except CrmError:
        return None


def purchase_events(
    cu: Customer, c: cmd.RecordPurchase, minor: int, now: datetime, actor: str
) -> list[ev.CustomerEvent]:
    """The events of a purchase :func:`plan` took, numbered on from ``cu`` (not applied):
    the purchase, the win-back if it wins the customer back, the tier change if it moves the
    tier (the rules of :mod:`crm_es.domain.decide.purchase_rules`, on the state before it)."""
    at = c.occurred_at or now
    version = cu.version + 1
    command_id, correlation_id, causation_id = c.command_id, c.correlation_id, c.causation_id
    events: list[ev.CustomerEvent] = [
        ev.PurchaseRecorded(
            originator_id=cu.id, originator_version=version, recorded_at=now, occurred_at=at,
            actor=actor, command_id=command_id, correlation_id=correlation_id,
            causation_id=causation_id, reason=None, order_id=c.order_id, amount=minor,
            currency=c.currency, items=[], product_category=c.product_category,
            channel=c.channel, staff=c.staff,
        )
    ]  # fmt: skip
    if wins_back(cu, at):
        version += 1
        events.append(
            ev.CustomerWonBack(
                originator_id=cu.id, originator_version=version, recorded_at=now,
                occurred_at=at, actor=actor, command_id=command_id,
                correlation_id=correlation_id, causation_id=causation_id, reason=None,
            )
        )  # fmt: skip
    change = tier_review(cu, at, tier_spend_delta(minor, c.currency))
    if change is not None:
        tier, spend = change
        events.append(
            ev.TierChanged(
                originator_id=cu.id, originator_version=version + 1, recorded_at=now,
                occurred_at=at, actor=actor, command_id=command_id,
                correlation_id=correlation_id, causation_id=causation_id, reason=None,
                from_tier=cu.tier, to_tier=tier, rolling_spend=spend,
            )
        )  # fmt: skip
    return events
