"""The events of a sales opportunity (跟踪销售机会), in the stream of the customer it is for.

An opportunity is opened at a stage of the store's pipeline (:mod:`crm_es.domain.pipeline`),
moves between its open stages, and closes once: won (optionally naming the order it became) or
lost (with a reason code the pipeline report groups by). Each event that sets a stage also
carries that stage's win probability as the pipeline gave it when the command was decided, so a
weighted forecast of a past date never moves when the settings change later (like a
complaint's ``sla_due``). Registered in :data:`crm_es.domain.events.EVENT_TYPES`.

The title and a loss's note are free text a person typed, so personal data; amounts, stages,
owners, sources and reason codes are not (they are codes and figures the reports group by).
"""

from __future__ import annotations

from datetime import date

from crm_es.domain.event_base import CustomerEvent


class OpportunityOpened(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.OpportunityOpened"
    PII_FIELDS = ("reason", "title")

    opportunity_id: str
    title: str
    amount: int  # minor units of currency
    currency: str
    stage: str  # a stage key of the pipeline (lead, qualified, …)
    probability: int  # percent: the stage's when decided
    expected_close_on: date | None = None
    owner: str | None = None  # staff id
    source: str | None = None


class OpportunityAdvanced(CustomerEvent, frozen=True, kw_only=True):
    """A move to another open stage, forward or back."""

    TOPIC = "crm.customer.OpportunityAdvanced"
    opportunity_id: str
    stage: str
    probability: int


class OpportunityWon(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.OpportunityWon"
    opportunity_id: str
    order_id: str | None = None  # the order it became


class OpportunityLost(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.OpportunityLost"
    PII_FIELDS = ("reason", "note")

    opportunity_id: str
    lost_reason: str  # a short code: price, competitor, no_budget …
    note: str | None = None


OPPORTUNITY_EVENTS = (OpportunityOpened, OpportunityAdvanced, OpportunityWon, OpportunityLost)
