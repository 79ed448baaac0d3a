"""Who needs a call: the at-risk customers worth most, and the most overdue care tasks.

Built from the reports of ONE query (segments, churn, agenda), so the lists agree with the
figures beside them: at risk is the churn rule's status, value is the segments report's
``monetary`` (net spend in its currency, other currencies never converted), overdue is the
agenda's. What the read models do not keep — the customer's name (personal data, encrypted in
the event store) and the last contact — comes from the few listed customers' own streams,
folded as of the same (as_of, known_at), so the lists for (D, T) never change either (except
that an erased customer's name is gone for good, by design).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Final
from uuid import UUID

import msgspec

from crm_es.domain.as_of import customer_as_of
from crm_es.domain.errors import CrmError
from crm_es.domain.values import ERASED
from crm_es.reports.agenda import AgendaReport
from crm_es.reports.churn import ChurnReport
from crm_es.reports.query import ReportQuery
from crm_es.reports.segments import SegmentsReport
from crm_es.store.store import Store

TOP_AT_RISK: Final = 15
TOP_OVERDUE: Final = 20


class AtRiskCustomer(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    name: str | None
    owner: str | None
    segment: str | None
    tier: str
    net_spend: str  # in the segments report's currency
    purchase_days: int
    days_since_last_purchase: int | None
    threshold_days: float | None  # silence after which the rule counts them churned
    last_contact_on: str | None  # the local day of the latest contact, None if never
    days_since_contact: int | None
    p_alive: float | None


class OverdueTask(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    name: str | None
    owner: str
    task_id: str
    care_kind: str | None
    staff: str | None
    due_on: str
    days_overdue: int


class Watchlist(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    at_risk_total: int  # every at-risk customer; ``at_risk`` holds the top ones
    at_risk: list[AtRiskCustomer]
    overdue_total: int
    overdue: list[OverdueTask]


class _Known(msgspec.Struct, frozen=True):
    name: str | None
    last_contact_at: datetime | None


def _known(store: Store, customer_ids: Iterable[str], query: ReportQuery) -> dict[str, _Known]:
    """Name and last contact of each customer as of the query, from its own stream."""
    out: dict[str, _Known] = {}
    for cid in customer_ids:
        if cid in out:
            continue
        try:
            state = customer_as_of(
                store.events.get(UUID(cid)), cid, as_of=query.as_of, known_at=query.known_at
            )
        except CrmError:  # not present as of the query: nothing to say of it
            out[cid] = _Known(None, None)
            continue
        out[cid] = _Known(ERASED if state.erased else state.name, state.last_contact_at)
    return out


def _day(moment: datetime | None, query: ReportQuery) -> date | None:
    return None if moment is None else moment.astimezone(query.tz).date()


def watchlist(
    store: Store,
    query: ReportQuery,
    seg: SegmentsReport,
    churn: ChurnReport,
    agenda: AgendaReport,
    top_at_risk: int = TOP_AT_RISK,
    top_overdue: int = TOP_OVERDUE,
) -> Watchlist:
    """The top ``top_at_risk`` at-risk customers by net spend (then ref) and the
    ``top_overdue`` most overdue care tasks (then due day, customer, task)."""
    segments = {c.customer_id: c for c in seg.customers}
    at_risk = [c for c in churn.customers if c.status == "at_risk" and c.customer_id in segments]
    at_risk.sort(
        key=lambda c: (-Decimal(segments[c.customer_id].monetary), c.external_ref or "",
                       c.customer_id)
    )  # fmt: skip
    top = at_risk[:top_at_risk]
    overdue = sorted(
        agenda.care_tasks_overdue,
        key=lambda t: (-(t.days_overdue or 0), t.due_on, t.customer_id, t.task_id),
    )[:top_overdue]
    known = _known(store, [c.customer_id for c in top] + [t.customer_id for t in overdue], query)
    today = query.reference_date
    rows = []
    for c in top:
        s, k = segments[c.customer_id], known[c.customer_id]
        contact = _day(k.last_contact_at, query)
        rows.append(
            AtRiskCustomer(
                customer_id=c.customer_id,
                external_ref=c.external_ref,
                name=k.name,
                owner=c.owner,
                segment=s.segment,
                tier=s.tier,
                net_spend=s.monetary,
                purchase_days=s.frequency,
                days_since_last_purchase=c.days_since_last_purchase,
                threshold_days=c.threshold_days,
                last_contact_on=contact.isoformat() if contact else None,
                days_since_contact=(today - contact).days if contact else None,
                p_alive=c.p_alive,
            )
        )
    tasks = [
        OverdueTask(
            customer_id=t.customer_id,
            external_ref=t.external_ref,
            name=known[t.customer_id].name,
            owner=t.owner,
            task_id=t.task_id,
            care_kind=t.care_kind,
            staff=t.staff,
            due_on=t.due_on,
            days_overdue=t.days_overdue or 0,
        )
        for t in overdue
    ]
    return Watchlist(
        currency=seg.currency,
        at_risk_total=len(at_risk),
        at_risk=rows,
        overdue_total=len(agenda.care_tasks_overdue),
        overdue=tasks,
    )
