"""A sales opportunity as the customer's state keeps it, and how its events change it.

:class:`~crm_es.domain.customer.Customer` holds its opportunities by id; what the deciders need
is here: the stage, whether it is still open, and the business time of its latest step (a step
may not be dated before it, :mod:`crm_es.domain.business_order`). The title is personal data and
is not kept in the state (the history has it). Evolution never fails and decides nothing: the
rules are checked in :mod:`crm_es.domain.decide.opportunities` before an event exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Protocol

import msgspec

from crm_es.domain import opportunity_events as oe
from crm_es.domain.event_base import CustomerEvent
from crm_es.domain.pipeline import LOST, WON

OPEN: Final = "open"


class Opportunity(msgspec.Struct, kw_only=True, gc=False):
    stage: str  # the open stage it is at, or the one it closed from
    status: str = OPEN  # open | won | lost
    amount: int  # minor units of currency
    currency: str
    owner: str | None = None
    opened_at: datetime
    last_step_at: datetime  # business time of its latest event
    order_id: str | None = None  # the order a won opportunity became

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


class HasOpportunities(Protocol):
    opportunities: dict[str, Opportunity]


def evolve_opportunity(state: HasOpportunities, event: CustomerEvent) -> None:
    """Apply one opportunity event to the opportunities of ``state`` (changed in place)."""
    if isinstance(event, oe.OpportunityOpened):
        state.opportunities[event.opportunity_id] = Opportunity(
            stage=event.stage, amount=event.amount, currency=event.currency, owner=event.owner,
            opened_at=event.occurred_at, last_step_at=event.occurred_at,
        )  # fmt: skip
        return
    if not isinstance(event, oe.OpportunityAdvanced | oe.OpportunityWon | oe.OpportunityLost):
        return
    opportunity = state.opportunities[event.opportunity_id]
    if event.occurred_at > opportunity.last_step_at:
        opportunity.last_step_at = event.occurred_at
    if isinstance(event, oe.OpportunityAdvanced):
        opportunity.stage = event.stage
    elif isinstance(event, oe.OpportunityWon):
        opportunity.status, opportunity.order_id = WON, event.order_id
    elif isinstance(event, oe.OpportunityLost):
        opportunity.status = LOST


OPPORTUNITY_EVOLVERS: Final[dict[type[CustomerEvent], Callable[[Any, Any], None]]] = dict.fromkeys(
    oe.OPPORTUNITY_EVENTS, evolve_opportunity
)
"""Event class -> evolver, for the customer's table of evolvers."""
