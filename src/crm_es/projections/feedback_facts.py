"""Read model ``feedback``: survey answers and complaint events, as time-stamped fact rows.

Raw answers are kept with their scale, so CSAT / NPS / CES / gap are computed by the report and a
scale change never rewrites history. Complaint events are kept one row each (filed, escalated,
resolved, reopened, followed up), so a complaint's state on any past date can be folded at query
time. Free-text fields (descriptions, comments, notes) are not copied: they may hold personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from crm_es.app.database import BIGINT, TEXT
from crm_es.domain import events as ev
from crm_es.projections.engine import ReadModel, RowKeys, Statement
from crm_es.projections.timefmt import iso

_COMPLAINT_KINDS: dict[type[ev.CustomerEvent], str] = {
    ev.ComplaintFiled: "filed",
    ev.ComplaintEscalated: "escalated",
    ev.ComplaintResolved: "resolved",
    ev.ComplaintReopened: "reopened",
    ev.ComplaintFollowedUp: "followed_up",
}


class FeedbackFacts(ReadModel):
    name = "feedback"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "survey_answers": (
            f"customer_id {TEXT} NOT NULL, survey_id {TEXT} NOT NULL, metric {TEXT} NOT NULL, "
            f"score {BIGINT}, expectation {BIGINT}, performance {BIGINT}, "
            f"scale_min {BIGINT} NOT NULL, scale_max {BIGINT} NOT NULL, channel {TEXT}, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, "
            "PRIMARY KEY (customer_id, survey_id)"
        ),
        "complaint_events": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, "
            f"complaint_id {TEXT} NOT NULL, "
            f"kind {TEXT} NOT NULL, category {TEXT}, severity {TEXT}, channel {TEXT}, "
            f"sla_due {TEXT}, satisfied {BIGINT}, occurred_at {TEXT} NOT NULL, "
            f"recorded_at {TEXT} NOT NULL, PRIMARY KEY (customer_id, version)"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {
        "complaints_by_id": "{complaint_events} (customer_id, complaint_id)",
    }

    def handle(self, event: ev.CustomerEvent, row: RowKeys) -> Iterable[Statement]:
        cid, occurred, recorded = row.customer_id, row.occurred_at, row.recorded_at
        if isinstance(event, ev.SurveyAnswered):
            yield (
                "INSERT INTO {survey_answers} (customer_id, survey_id, metric, score, expectation, "
                "performance, scale_min, scale_max, channel, occurred_at, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, event.survey_id, event.metric, event.score, event.expectation,
                 event.performance, event.scale_min, event.scale_max, event.channel,
                 occurred, recorded),
            )  # fmt: skip
            return
        kind = _COMPLAINT_KINDS.get(type(event))
        if kind is None:
            return
        filed = event if isinstance(event, ev.ComplaintFiled) else None
        satisfied = event.satisfied if isinstance(event, ev.ComplaintFollowedUp) else None
        yield (
            "INSERT INTO {complaint_events} (customer_id, version, complaint_id, kind, category, "
            "severity, channel, sla_due, satisfied, occurred_at, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, event.originator_version, event.complaint_id, kind,  # type: ignore[attr-defined]
             filed.category if filed else None, filed.severity if filed else None,
             filed.channel if filed else None, iso(filed.sla_due) if filed else None,
             None if satisfied is None else int(satisfied), occurred, recorded),
        )  # fmt: skip
