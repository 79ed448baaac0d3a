"""Every event of a customer stream, as msgspec Structs with explicit, stable topics.

Events are past tense and carry the whole envelope (recorded time, business time, who, why, ids).
The topic string is what is stored: it never names a Python module, so moving code never orphans
history. ``class_version`` plus ``upcast_vN_vM`` static methods evolve a schema without rewriting
stored events (the codec runs them on read). ``PII_FIELDS`` lists, as paths, every field that may
hold personal data (names and contact details, and every free text: a person can write anything
into a summary, a reason, a tag); the codec encrypts exactly those with the customer's own key
(see :mod:`crm_es.domain.personal_fields`), so an erasure leaves none of them readable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from crm_es.domain.event_base import CustomerEvent as CustomerEvent
from crm_es.domain.goal_events import GoalClosed as GoalClosed
from crm_es.domain.goal_events import GoalRevised as GoalRevised
from crm_es.domain.goal_events import GoalSet as GoalSet
from crm_es.domain.merge_events import CustomersMerged as CustomersMerged
from crm_es.domain.opportunity_events import OpportunityAdvanced as OpportunityAdvanced
from crm_es.domain.opportunity_events import OpportunityLost as OpportunityLost
from crm_es.domain.opportunity_events import OpportunityOpened as OpportunityOpened
from crm_es.domain.opportunity_events import OpportunityWon as OpportunityWon
from crm_es.domain.values import (
    CareKind,
    Category,
    Channel,
    CustomerKind,
    Direction,
    Metric,
    ServiceKind,
    ServicePhase,
    Severity,
    Tier,
)

# --- identity ---------------------------------------------------------------------------------


class CustomerRegistered(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CustomerRegistered"
    PII_FIELDS = ("reason", "name", "email", "phone", "birthday")

    external_ref: str | None
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
    birthday: str | None = None  # ISO date; a string so it can be encrypted like the other PII


class ProfileUpdated(CustomerEvent, frozen=True, kw_only=True):
    """Only the fields that changed are set; ``None`` clears a field, UNSET leaves it alone."""

    TOPIC = "crm.customer.ProfileUpdated"
    PII_FIELDS = ("reason", "name", "email", "phone", "birthday")

    kind: CustomerKind | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    region: str | UnsetType | None = UNSET
    industry: str | UnsetType | None = UNSET
    company_size: str | UnsetType | None = UNSET
    income_band: str | UnsetType | None = UNSET
    name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    birthday: str | UnsetType | None = UNSET


class TagsChanged(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.TagsChanged"
    PII_FIELDS = ("reason", "added[]", "removed[]")
    added: list[str] = []
    removed: list[str] = []


class OwnerAssigned(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.OwnerAssigned"
    owner: str | None  # staff id; None = unassigned


class ConsentChanged(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ConsentChanged"
    marketing: bool
    lawful_basis: str | None = None


# --- interaction ------------------------------------------------------------------------------


class ContactLogged(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ContactLogged"
    PII_FIELDS = ("reason", "summary", "outcome", "feedback")

    channel: Channel
    direction: Direction
    summary: str | None = None
    outcome: str | None = None
    feedback: str | None = None
    staff: str | None = None


# --- sales and service ------------------------------------------------------------------------


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    quantity: int = 1
    name: str | None = None


class PurchaseRecorded(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.PurchaseRecorded"
    PII_FIELDS = ("reason", "items[].name")
    order_id: str
    amount: int  # minor units of currency
    currency: str
    items: list[LineItem] = []
    product_category: str | None = None
    channel: Channel | None = None
    staff: str | None = None


class PurchaseRefunded(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.PurchaseRefunded"
    order_id: str
    amount: int
    currency: str


class ServiceRecorded(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ServiceRecorded"
    PII_FIELDS = ("reason", "summary")

    phase: ServicePhase
    kind: ServiceKind
    summary: str | None = None
    order_id: str | None = None
    staff: str | None = None


# --- complaints -------------------------------------------------------------------------------


class ComplaintFiled(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ComplaintFiled"
    PII_FIELDS = ("reason", "description")

    complaint_id: str
    category: str
    severity: Severity
    channel: Channel | None = None
    description: str | None = None
    sla_due: datetime  # computed from severity when filed; policy changes never rewrite it


class ComplaintEscalated(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ComplaintEscalated"
    complaint_id: str
    escalated_to: str | None = None


class ComplaintResolved(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ComplaintResolved"
    PII_FIELDS = ("reason", "resolution")
    complaint_id: str
    resolution: str
    compensation: int | None = None  # minor units
    compensation_currency: str | None = None


class ComplaintReopened(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ComplaintReopened"
    complaint_id: str


class ComplaintFollowedUp(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.ComplaintFollowedUp"
    PII_FIELDS = ("reason", "note")

    complaint_id: str
    satisfied: bool
    note: str | None = None


# --- feedback ---------------------------------------------------------------------------------


class SurveyAnswered(CustomerEvent, frozen=True, kw_only=True):
    """One answer with its scale: scores are computed in projections, never assumed here."""

    TOPIC = "crm.customer.SurveyAnswered"
    PII_FIELDS = ("reason", "comment")

    survey_id: str
    metric: Metric
    score: int | None = None  # csat / nps / ces
    expectation: int | None = None  # gap
    performance: int | None = None  # gap
    scale_min: int
    scale_max: int
    comment: str | None = None
    channel: Channel | None = None
    # The factor rated (a survey topic code); stored only when given, so answers without one
    # keep the bytes they had before topics existed and those stored then read as overall
    # answers, with no upcast.
    topic: str | UnsetType = UNSET


# --- loyalty ----------------------------------------------------------------------------------


class PointsGranted(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.PointsGranted"
    PII_FIELDS = ("reason", "grant_reason")
    lot_id: int  # the stream version of this grant: the identity of its points lot
    points: int
    expires_on: date | None = None
    grant_reason: str | None = None


class PointsDraw(msgspec.Struct, frozen=True):
    lot_id: int
    points: int


class PointsRedeemed(CustomerEvent, frozen=True, kw_only=True):
    """Which lots paid is decided when the command runs (soonest-expiring first) and stored."""

    TOPIC = "crm.customer.PointsRedeemed"
    PII_FIELDS = ("reason", "reward")
    points: int
    reward: str | None = None
    draws: list[PointsDraw] = []


class PointsExpired(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.PointsExpired"
    points: int
    draws: list[PointsDraw] = []


class TierChanged(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.TierChanged"
    from_tier: Tier
    to_tier: Tier
    rolling_spend: int  # minor units of TIER_CURRENCY over the 12 months before occurred_at
    rule: str = "rolling-12-month-net-spend-v1"


# --- care -------------------------------------------------------------------------------------


class CareTaskScheduled(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CareTaskScheduled"
    PII_FIELDS = ("reason", "note")

    task_id: str
    kind: CareKind
    due_on: date
    channel: Channel | None = None
    staff: str | None = None
    note: str | None = None


class CareTaskCompleted(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CareTaskCompleted"
    PII_FIELDS = ("reason", "outcome", "note")

    task_id: str
    outcome: str | None = None
    note: str | None = None


class CareTaskCancelled(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CareTaskCancelled"
    task_id: str


# --- churn ------------------------------------------------------------------------------------


class CustomerChurned(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CustomerChurned"
    PII_FIELDS = ("reason", "churn_reason")
    churn_reason: str


class CustomerWonBack(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CustomerWonBack"


# --- privacy ----------------------------------------------------------------------------------


class PersonalDataErased(CustomerEvent, frozen=True, kw_only=True):
    """Holds no personal data itself: who asked and on what legal basis. Its reason stays
    readable after the erasure it records: the auditor's record of why."""

    TOPIC = "crm.customer.PersonalDataErased"
    PII_FIELDS = ()
    requested_by: str
    legal_basis: str | None = None


EVENT_TYPES: dict[str, type[CustomerEvent]] = {
    cls.TOPIC: cls
    for cls in (
        CustomerRegistered,
        ProfileUpdated,
        TagsChanged,
        OwnerAssigned,
        ConsentChanged,
        ContactLogged,
        PurchaseRecorded,
        PurchaseRefunded,
        ServiceRecorded,
        OpportunityOpened,
        OpportunityAdvanced,
        OpportunityWon,
        OpportunityLost,
        ComplaintFiled,
        ComplaintEscalated,
        ComplaintResolved,
        ComplaintReopened,
        ComplaintFollowedUp,
        SurveyAnswered,
        PointsGranted,
        PointsRedeemed,
        PointsExpired,
        TierChanged,
        CareTaskScheduled,
        CareTaskCompleted,
        CareTaskCancelled,
        CustomerChurned,
        CustomerWonBack,
        PersonalDataErased,
        CustomersMerged,
        GoalSet,
        GoalRevised,
        GoalClosed,
    )
}
"""Topic -> event class: the single registry the mapper resolves stored topics with."""

CUSTOMER_EVENT_TYPES: Final = tuple(
    cls for cls in EVENT_TYPES.values() if cls not in (GoalSet, GoalRevised, GoalClosed)
)
"""The events of a customer's stream: every event but the plan's (domain/goal_events.py)."""

PERSONAL_PATHS: Final = tuple(sorted({p for cls in EVENT_TYPES.values() for p in cls.PII_FIELDS}))
"""Every path of personal data any event declares: what reading a whole history reads."""


def event_type_name(event: CustomerEvent | type[CustomerEvent]) -> str:
    """The short name used in history output and ``--type`` filters (``PurchaseRecorded``)."""
    cls = event if isinstance(event, type) else type(event)
    return cls.TOPIC.rsplit(".", 1)[-1]


def event_to_dict(event: CustomerEvent) -> dict[str, Any]:
    """Plain JSON-ready mapping of an event (UNSET fields left out), envelope included."""
    return msgspec.to_builtins(event)  # type: ignore[no-any-return]
