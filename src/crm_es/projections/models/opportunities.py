"""Read model ``opportunities``: every sales-opportunity event, as a time-stamped fact row.

One row per event (opened, advanced, won, lost) with its business and recorded times, so the
pipeline report folds each opportunity to its state at any (as of, known at) cut: its stage,
whether it was open, won or lost, the probability its stage carried, its amount and owner. The
probability is the one stamped on the event when it was decided, so a later change of the
store's pipeline never moves a past forecast. The title and a loss's note are free text and may
hold personal data: they are not copied (nothing here needs erasing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT

_COLUMNS = (
    "customer_id, version, opportunity_id, kind, stage, probability, amount, currency, owner, "
    "source, expected_close_on, lost_reason, order_id, day, occurred_at, recorded_at"
)
_INSERT = (
    f"INSERT INTO {{opportunity_events}} ({_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Opportunities(ReadModel):
    name = "opportunities"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "opportunity_events": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, "
            f"opportunity_id {TEXT} NOT NULL, kind {TEXT} NOT NULL, stage {TEXT}, "
            f"probability {BIGINT}, amount {BIGINT}, currency {TEXT}, owner {TEXT}, "
            f"source {TEXT}, expected_close_on {TEXT}, lost_reason {TEXT}, order_id {TEXT}, "
            f"day {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {"opportunity_events": "customer_id, version"}
    indexes: ClassVar[dict[str, str]] = {
        "opportunities_by_id": "{opportunity_events} (customer_id, opportunity_id)",
    }

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.OpportunityOpened: self._opened,
            ev.OpportunityAdvanced: self._advanced,
            ev.OpportunityWon: self._won,
            ev.OpportunityLost: self._lost,
        }

    @staticmethod
    def _row(e: Any, kind: str, row: RowKeys, **values: Any) -> list[Statement]:
        v = values.get
        return [(_INSERT, (
            row.customer_id, e.originator_version, e.opportunity_id, kind, v("stage"),
            v("probability"), v("amount"), v("currency"), v("owner"), v("source"),
            v("expected_close_on"), v("lost_reason"), v("order_id"), row.day, row.occurred_at,
            row.recorded_at,
        ))]  # fmt: skip

    def _opened(self, e: ev.OpportunityOpened, row: RowKeys) -> list[Statement]:
        close = e.expected_close_on.isoformat() if e.expected_close_on is not None else None
        return self._row(
            e, "opened", row, stage=e.stage, probability=e.probability, amount=e.amount,
            currency=e.currency, owner=e.owner, source=e.source, expected_close_on=close,
        )  # fmt: skip

    def _advanced(self, e: ev.OpportunityAdvanced, row: RowKeys) -> list[Statement]:
        return self._row(e, "advanced", row, stage=e.stage, probability=e.probability)

    def _won(self, e: ev.OpportunityWon, row: RowKeys) -> list[Statement]:
        return self._row(e, "won", row, order_id=e.order_id)

    def _lost(self, e: ev.OpportunityLost, row: RowKeys) -> list[Statement]:
        return self._row(e, "lost", row, lost_reason=e.lost_reason)
