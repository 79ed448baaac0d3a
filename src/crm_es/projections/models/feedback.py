"""Read model ``feedback``: survey answers and complaint events, as time-stamped fact rows.

Raw answers are kept with their scale, so CSAT / NPS / CES / gap are computed by the report and a
scale change never rewrites history, and with their topic (the factor rated; none for an overall
answer), which the drivers report groups by. Complaint events are kept one row each (filed,
escalated, resolved, reopened, followed up), so a complaint's state on any past date can be
folded at query time. Free-text fields (descriptions, comments, notes) are not copied: they may
hold personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crm_es.domain import events as ev
from crm_es.domain.times import iso
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT


class Feedback(ReadModel):
    name = "feedback"
    schema_version = 3  # v2: the day of each fact in the store's time zone; v3: answer topics
    tables: ClassVar[dict[str, str]] = {
        "survey_answers": (
            f"customer_id {TEXT} NOT NULL, survey_id {TEXT} NOT NULL, metric {TEXT} NOT NULL, "
            f"score {BIGINT}, expectation {BIGINT}, performance {BIGINT}, "
            f"scale_min {BIGINT} NOT NULL, scale_max {BIGINT} NOT NULL, channel {TEXT}, "
            f"day {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, "
            f"topic {TEXT}"
        ),
        "complaint_events": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, "
            f"complaint_id {TEXT} NOT NULL, "
            f"kind {TEXT} NOT NULL, category {TEXT}, severity {TEXT}, channel {TEXT}, "
            f"sla_due {TEXT}, satisfied {BIGINT}, day {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {
        "survey_answers": "customer_id, survey_id",
        "complaint_events": "customer_id, version",
    }
    indexes: ClassVar[dict[str, str]] = {
        "complaints_by_id": "{complaint_events} (customer_id, complaint_id)",
    }

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.SurveyAnswered: self._survey_answered,
            ev.ComplaintFiled: self._complaint_filed,
            ev.ComplaintEscalated: self._complaint_event("escalated"),
            ev.ComplaintResolved: self._complaint_event("resolved"),
            ev.ComplaintReopened: self._complaint_event("reopened"),
            ev.ComplaintFollowedUp: self._complaint_followed_up,
        }

    @staticmethod
    def _survey_answered(e: ev.SurveyAnswered, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {survey_answers} (customer_id, survey_id, metric, score, expectation, "
            "performance, scale_min, scale_max, channel, day, occurred_at, recorded_at, topic) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.survey_id, e.metric, e.score, e.expectation, e.performance,
             e.scale_min, e.scale_max, e.channel, row.day, row.occurred_at, row.recorded_at,
             e.topic if isinstance(e.topic, str) else None),
        )]  # fmt: skip

    @staticmethod
    def _complaint_row(
        e: ev.CustomerEvent, complaint_id: str, kind: str, row: RowKeys,
        filed: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
        satisfied: int | None = None,
    ) -> list[Statement]:  # fmt: skip
        category, severity, channel, sla_due = filed
        return [(
            "INSERT INTO {complaint_events} (customer_id, version, complaint_id, kind, category, "
            "severity, channel, sla_due, satisfied, day, occurred_at, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, complaint_id, kind, category, severity,
             channel, sla_due, satisfied, row.day, row.occurred_at, row.recorded_at),
        )]  # fmt: skip

    def _complaint_filed(self, e: ev.ComplaintFiled, row: RowKeys) -> list[Statement]:
        filed = (e.category, e.severity, e.channel, iso(e.sla_due))
        return self._complaint_row(e, e.complaint_id, "filed", row, filed)

    def _complaint_event(self, kind: str) -> Handler:
        def handle(e: ev.ComplaintEscalated, row: RowKeys) -> list[Statement]:
            return self._complaint_row(e, e.complaint_id, kind, row)

        return handle

    def _complaint_followed_up(self, e: ev.ComplaintFollowedUp, row: RowKeys) -> list[Statement]:
        return self._complaint_row(
            e, e.complaint_id, "followed_up", row, satisfied=int(e.satisfied)
        )
