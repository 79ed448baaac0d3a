"""The satisfaction report: CSAT, NPS, CES, expectation gap and complaint handling, as of a date.

Survey answers and complaint events come from the ``feedback`` read model as fact rows with both
times; only rows with occurred_at <= as_of and recorded_at <= known_at count. Every figure is given
overall and by month (YYYY-MM of the business time in the store's time zone), RFM segment
(10-segment R×F grid of the population as of the date, :mod:`crm_es.reports.facts.population`),
owner and channel. The
figures themselves are defined in :mod:`crm_es.reports.facts.feedback`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.facts.customers import load_refs, owner_of
from crm_es.reports.facts.feedback import (
    STANDARD_SCALES,
    Answer,
    ComplaintState,
    complaint_fields,
    fold_complaints,
    group_by,
    load_answers,
    survey_fields,
)
from crm_es.reports.facts.population import load_population
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

UNKNOWN_CHANNEL: Final = "(unknown)"
NO_PURCHASE: Final = "(no purchase)"
OVERALL_KEY: Final = "(all)"
DIMENSIONS: Final = ("month", "segment", "owner", "channel")


class SurveyFigures(msgspec.Struct, frozen=True, kw_only=True):
    responses: int  # every survey answer, whatever its metric or scale
    csat_answers: int
    nps_answers: int
    ces_answers: int
    gap_answers: int
    off_scale_answers: int  # answers on a non-standard scale: excluded from every figure
    csat: float | None
    nps: float | None
    ces_mean: float | None
    ces_share_high: float | None
    gap_mean: float | None
    gap_negative_share: float | None


class SurveyBreakdown(SurveyFigures, frozen=True, kw_only=True):
    key: str


class ComplaintFigures(msgspec.Struct, frozen=True, kw_only=True):
    filed: int
    open: int
    resolved: int
    resolution_hours_median: float | None  # filed → last resolution, complaints resolved now
    resolution_hours_p90: float | None
    sla_breach_rate: float | None  # % of filed: resolved after sla_due, or open past sla_due
    reopen_rate: float | None  # % of ever-resolved complaints reopened at least once
    followup_satisfaction_rate: float | None  # % satisfied among followed up (last follow-up)


class ComplaintBreakdown(ComplaintFigures, frozen=True, kw_only=True):
    key: str


class SatisfactionReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    scales: dict[str, tuple[int, int]]
    overall: SurveyFigures
    by_month: list[SurveyBreakdown]
    by_segment: list[SurveyBreakdown]
    by_owner: list[SurveyBreakdown]
    by_channel: list[SurveyBreakdown]
    complaints: ComplaintFigures
    complaints_by_month: list[ComplaintBreakdown]
    complaints_by_segment: list[ComplaintBreakdown]
    complaints_by_owner: list[ComplaintBreakdown]
    complaints_by_channel: list[ComplaintBreakdown]


def satisfaction_report(tx: Tx, tables: dict[str, str], query: ReportQuery) -> SatisfactionReport:
    refs = load_refs(tx, tables, query)
    segments = load_population(tx, tables, query, TIER_CURRENCY, ChurnRule()).segment_of()
    answers = load_answers(tx, tables, query)
    complaints = fold_complaints(tx, tables, query)

    def segment(cid: str) -> str:
        return segments.get(cid) or NO_PURCHASE

    answer_keys: dict[str, Callable[[Answer], str]] = {
        "month": lambda a: a.day[:7],
        "segment": lambda a: segment(a.customer_id),
        "owner": lambda a: owner_of(refs, a.customer_id),
        "channel": lambda a: a.channel or UNKNOWN_CHANNEL,
    }
    complaint_keys: dict[str, Callable[[ComplaintState], str]] = {
        "month": lambda c: c.filed_day[:7],
        "segment": lambda c: segment(c.customer_id),
        "owner": lambda c: owner_of(refs, c.customer_id),
        "channel": lambda c: c.channel or UNKNOWN_CHANNEL,
    }
    by = {
        dim: [SurveyBreakdown(key=k, **survey_fields(group)) for k, group in groups.items()]
        for dim, groups in ((d, group_by(answers, f)) for d, f in answer_keys.items())
    }
    as_of = query.as_of_iso
    complaints_by = {
        dim: [ComplaintBreakdown(key=k, **complaint_fields(g, as_of)) for k, g in groups.items()]
        for dim, groups in ((d, group_by(complaints, f)) for d, f in complaint_keys.items())
    }
    return SatisfactionReport(
        as_of=as_of,
        known_at=query.known_at_iso,
        scales=dict(STANDARD_SCALES),
        overall=SurveyFigures(**survey_fields(answers)),
        by_month=by["month"],
        by_segment=by["segment"],
        by_owner=by["owner"],
        by_channel=by["channel"],
        complaints=ComplaintFigures(**complaint_fields(complaints, as_of)),
        complaints_by_month=complaints_by["month"],
        complaints_by_segment=complaints_by["segment"],
        complaints_by_owner=complaints_by["owner"],
        complaints_by_channel=complaints_by["channel"],
    )


def table_rows(report: SatisfactionReport) -> list[dict[str, object]]:
    """One row per (dimension, key) with the survey and complaint figures; "overall" first.

    A key with survey answers but no complaints (or the reverse) gets zero counts and None figures
    for the missing side, so every row has the same columns.
    """
    empty_survey = survey_fields([])
    empty_complaints = complaint_fields([], report.as_of)
    rows: list[dict[str, object]] = [
        {
            "dimension": "overall",
            "key": OVERALL_KEY,
            **msgspec.structs.asdict(report.overall),
            **msgspec.structs.asdict(report.complaints),
        }
    ]
    for dim in DIMENSIONS:
        surveys = {b.key: b for b in getattr(report, f"by_{dim}")}
        complaints = {b.key: b for b in getattr(report, f"complaints_by_{dim}")}
        for key in sorted(surveys.keys() | complaints.keys()):
            survey = surveys.get(key)
            complaint = complaints.get(key)
            row: dict[str, object] = {"dimension": dim, "key": key}
            row.update(msgspec.structs.asdict(survey) if survey else empty_survey)
            row.update(msgspec.structs.asdict(complaint) if complaint else empty_complaints)
            rows.append(row)
    return rows
