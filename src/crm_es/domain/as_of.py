"""A customer as the world stood at a business time, as recorded by a knowledge time.

Two time axes (design §4): ``as_of`` is business time (``occurred_at``: what had happened by
then) and ``known_at`` is knowledge time (the recorded time: what had been recorded by then). The
state "as of" either, or both, is the stream replayed in stream order with only the events that
qualify; a stream version bounds it further.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.errors import CustomerNotFound, CustomerNotYetKnown


def customer_as_of(
    events: Iterable[ev.CustomerEvent],
    customer: str,
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> Customer:
    """Fold ``events`` (one stream, oldest first) with the cut; ``customer`` names it in errors.

    A customer exists as of ``as_of`` from its earliest event, which is not always its
    registration (purchases back-dated before it): the registration, which creates the record,
    is then folded for its identity alone (what it says of the customer was not yet said)."""
    state: Customer | None = None
    exists = present = False
    for event in events:
        exists = True
        if known_at is not None and event.recorded_at > known_at:
            if state is None:
                break  # registration itself is outside the cut: nothing else can count
            continue
        late = as_of is not None and event.occurred_at > as_of
        if late and state is not None:
            continue
        identity = late and isinstance(event, ev.CustomerRegistered)
        state = evolve(state, (_identity_only(event) if identity else event,))
        if identity and state is not None:
            state.attribute_times = {}  # it set no attribute as of then
        present = present or not late
    if state is None or not present:
        if not exists:
            raise CustomerNotFound(customer)
        cut = [f"as of {as_of.isoformat()}" if as_of else "",
               f"known at {known_at.isoformat()}" if known_at else ""]  # fmt: skip
        raise CustomerNotYetKnown(customer, " and ".join(c for c in cut if c))
    return state


def _identity_only(event: ev.CustomerEvent) -> ev.CustomerEvent:
    """A registration that says who the customer is and nothing else (every attribute at its
    default), for a date before it."""
    blank = {
        name: field.default
        for name, field in zip(
            ev.CustomerRegistered.__struct_fields__,
            msgspec.structs.fields(ev.CustomerRegistered),
            strict=True,
        )
        if name not in _IDENTITY and field.default is not msgspec.NODEFAULT
    }
    return msgspec.structs.replace(event, **blank)


# What a registration keeps when folded for a date before it: the envelope and the ref.
_IDENTITY = frozenset({*ev.CustomerEvent.__struct_fields__, "external_ref"})
