"""Sales opportunities as of a query: every opportunity opened by the cut, folded to its state at
the cut (its stage, the probability that stage carried, open / won / lost, when it closed and
why it was lost), from the ``opportunities`` read model.

A step of an opportunity is never dated before its previous one (the deciders refuse it, see
:mod:`crm_es.domain.business_order`), so the steps inside the cut are the first ones of its
stream: folding them in stream order gives its state as of the date, as known at the time.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

OPEN = "open"


class OpportunityState(msgspec.Struct, kw_only=True):
    """One opportunity folded up to the cut."""

    customer_id: str
    opportunity_id: str
    stage: str  # the open stage it is at (or closed from)
    probability: int  # percent, as stamped on the event that set the stage
    amount: int  # minor units of currency
    currency: str
    owner: str | None
    source: str | None
    opened_at: datetime
    stages: list[str]  # every stage it was at, in order
    status: str = OPEN  # open | won | lost
    closed_at: datetime | None = None
    lost_reason: str | None = None

    @property
    def cycle_days(self) -> float | None:
        """Days from opening to closing (None while open)."""
        if self.closed_at is None:
            return None
        return (self.closed_at - self.opened_at).total_seconds() / 86400


def fold_opportunities(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> list[OpportunityState]:
    """Every opportunity opened by the cut, with its state as of the cut, by customer and id."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, opportunity_id, kind, stage, probability, amount, currency, owner, "
        f"source, lost_reason, occurred_at FROM {tables['opportunity_events']} WHERE {cut} "
        "ORDER BY customer_id, version",
        params,
    )
    found: dict[tuple[str, str], OpportunityState] = {}
    for cid, oid, kind, stage, probability, amount, currency, owner, source, reason, at in rows:
        key = (str(cid), str(oid))
        if kind == "opened":
            found[key] = OpportunityState(
                customer_id=key[0], opportunity_id=key[1], stage=stage,
                probability=int(probability), amount=int(amount), currency=currency,
                owner=owner, source=source, opened_at=_time(at), stages=[stage],
            )  # fmt: skip
            continue
        state = found.get(key)
        if state is None:  # opened outside the cut (only an import can store that)
            continue
        if kind == "advanced":
            state.stage, state.probability = stage, int(probability)
            state.stages.append(stage)
        else:
            state.status, state.closed_at, state.lost_reason = kind, _time(at), reason
    return sorted(found.values(), key=lambda s: (s.customer_id, s.opportunity_id))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
