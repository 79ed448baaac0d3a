"""The demo data generator: a realistic, deterministic stream of CRM commands.

``generate_commands(customers=2000, years=2.0, seed=7)`` yields about 30 commands per customer
(registrations, purchases with points and care tasks, contacts, services, complaints, surveys,
redemptions and expiries, churn and win-back, a few erasures, one customer registered twice and
merged), in non-decreasing business time, all within ``[end - years, end]``. Executed in order
against an empty store, every command is accepted.

Each customer's life is drawn by :class:`crm_es.demo.timeline.Life`; :func:`settle` then replays it
in business-time order with the state the domain will check (point lots and their expiry, churn
status) and drops or trims what the domain would refuse, exactly as the domain rules say.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import msgspec

from crm_es.demo.goals import plan_commands
from crm_es.demo.population import CST, clock, default_end, make_customer, to_cst
from crm_es.demo.timeline import Life
from crm_es.demo.touches import Ids
from crm_es.domain import commands as c
from crm_es.domain.values import Channel, Direction

ERASED_SHARE: Final = 0.005
REDEEM_STEP: Final = 100  # rewards are priced in hundreds of points


@dataclass(slots=True)
class _Lot:
    expires_on: date | None
    remaining: int


def _expired(lots: list[_Lot], today: date) -> list[_Lot]:
    """Lots the domain treats as expired on ``today`` (``expires_on`` before it)."""
    return [
        lot
        for lot in lots
        if lot.expires_on is not None and lot.expires_on < today and lot.remaining > 0
    ]


def settle(drawn: list[tuple[datetime, c.Command]]) -> list[tuple[datetime, c.Command]]:
    """One customer's commands in business-time order, keeping only what the domain accepts.

    Redemptions are cut to the balance available on their day (soonest-expiring lots drawn first,
    expired lots unavailable) or dropped; expiry runs with nothing to expire are dropped; a churn
    of a churned customer and a win-back of an active one are dropped.
    """
    lots: list[_Lot] = []
    churned = False
    kept: list[tuple[datetime, c.Command]] = []
    for at, _, command in sorted((at, i, cmd) for i, (at, cmd) in enumerate(drawn)):
        today = at.date()
        if isinstance(command, c.GrantPoints):
            lots.append(_Lot(command.expires_on, command.points))
        elif isinstance(command, c.RedeemPoints):
            for lot in _expired(lots, today):
                lot.remaining = 0
            available = sum(lot.remaining for lot in lots)
            wanted = command.points if command.points <= available else available
            wanted -= wanted % REDEEM_STEP
            if wanted <= 0:
                continue
            command = msgspec.structs.replace(command, points=wanted)
            live = sorted(lots, key=lambda lot: (lot.expires_on is None, lot.expires_on or today))
            for lot in live:
                take = min(wanted, lot.remaining)
                lot.remaining -= take
                wanted -= take
        elif isinstance(command, c.ExpirePoints):
            expired = _expired(lots, today)
            if not expired:
                continue
            for lot in expired:
                lot.remaining = 0
        elif isinstance(command, c.RecordPurchase):
            churned = False
        elif isinstance(command, c.ChurnCustomer):
            if churned:
                continue
            churned = True
        elif isinstance(command, c.WinBackCustomer):
            if not churned:
                continue
            churned = False
        lots = [lot for lot in lots if lot.remaining > 0]
        kept.append((at, command))
    return kept


def _erase(
    rng: random.Random, kept: list[tuple[datetime, c.Command]], ref: str, end: datetime
) -> list[tuple[datetime, c.Command]]:
    """The customer's history cut at an erasure request in the last weeks of the period."""
    at = clock(rng, (end - rng.uniform(1, 30) * timedelta(days=1)).date())
    at = min(at, end)
    erase = c.ErasePersonalData(
        customer=ref,
        requested_by="data-subject",
        legal_basis="个人信息保护法第四十七条",
        reason="客户申请注销并删除个人信息",
        occurred_at=at,
        actor="user:dpo",
    )
    return [(t, cmd) for t, cmd in kept if t < at] + [(at, erase)]


def _registered_twice(
    register: c.RegisterCustomer, at: datetime
) -> list[tuple[datetime, c.Command]]:
    """The same person registered again ten days after ``register`` (at ``at``): a purchase
    and a call on the second record, which staff then merge into the first (客户识别)."""
    ref = f"{register.external_ref}-2"
    again = msgspec.structs.replace(register, external_ref=ref, command_id=None)
    bought = c.RecordPurchase(customer=ref, order_id=f"{ref}-O1", amount="88.00", currency="CNY",
                              channel=Channel.ONLINE)  # fmt: skip
    called = c.LogContact(customer=ref, channel=Channel.PHONE, direction=Direction.INBOUND,
                          summary="查询订单")  # fmt: skip
    merge = c.MergeCustomers(customer=ref, into=register.external_ref, reason="同一客户重复登记",
                             actor="user:li")  # fmt: skip
    day = timedelta(days=1)
    return [(at + 10 * day, again), (at + 11 * day, bought), (at + 12 * day, called),
            (at + 20 * day, merge)]  # fmt: skip


def generate_commands(
    *, customers: int = 2000, years: float = 2.0, seed: int = 7, end: datetime | None = None
) -> Iterator[c.Command]:
    """Yield the demo commands, each with ``occurred_at`` and ``command_id`` set and the
    person acting (``user:li``, ``api:shop``) as ``on_behalf_of``.

    Deterministic for a given ``seed`` (and ``end``); ``end`` defaults to now rounded down to the
    hour minus one hour; every business time lies in ``[end - years, end]`` (+08:00).
    """
    if customers < 0 or years <= 0:
        raise ValueError("customers must be >= 0 and years > 0")
    rng = random.Random(seed)
    stop = to_cst(end) if end is not None else default_end()
    start = stop - timedelta(days=365.25 * years)
    span = stop - start
    registered: list[datetime] = []
    for _ in range(customers):
        moment = start + span * (rng.random() ** 0.85) * 0.995
        at = clock(rng, moment.date())
        registered.append(at if start <= at <= stop else moment)
    registered.sort()
    old_enough = [i for i, t in enumerate(registered) if t < stop - timedelta(days=90)]
    n_erased = max(1, round(customers * ERASED_SHARE)) if old_enough else 0
    erased = set(rng.sample(old_enough, min(n_erased, len(old_enough))))
    # One customer registered twice and merged (chosen without a draw: the rest stays as it was).
    twice = next((i for i in old_enough if i not in erased), None)
    ids = Ids()
    timeline: list[tuple[datetime, int, int, c.Command]] = []
    for index, at in enumerate(registered):
        profile, register = make_customer(rng, index + 1, at)
        kept = settle(Life(rng, profile, register, stop, ids).simulate())
        if index in erased:
            kept = _erase(rng, kept, profile.ref, stop)
        if index == twice:
            kept += _registered_twice(register, at)
        timeline.extend((t, index, k, cmd) for k, (t, cmd) in enumerate(kept))
    timeline.extend((t, -1, k, cmd) for k, (t, cmd) in enumerate(plan_commands(start, stop)))
    timeline.sort(key=lambda row: (row[0], row[1], row[2]))
    for n, (at, _, _, command) in enumerate(timeline, start=1):
        yield msgspec.structs.replace(
            command,
            command_id=f"demo-{seed}-{n}",
            occurred_at=at.astimezone(CST),
            actor=None,  # the actor is who runs the demo; the person is who it acted for
            on_behalf_of=command.actor
            if command.actor not in (None, "system:demo")
            else msgspec.UNSET,
        )


def summarize(commands: Iterable[c.Command]) -> dict[str, int]:
    """How many commands of each wire ``type`` (e.g. ``{"record_purchase": 9120, …}``)."""
    counts = Counter(c.command_type_name(command) for command in commands)
    return dict(sorted(counts.items()))
