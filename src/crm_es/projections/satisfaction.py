"""The satisfaction report: CSAT, NPS, CES, expectation gap and complaint handling, as of a date.

Survey answers and complaint events come from the ``feedback`` read model as fact rows with both
times; only rows with occurred_at <= as_of and recorded_at <= known_at count. Every figure is given
overall and by month (YYYY-MM of the business time, UTC), RFM segment (10-segment R×F grid, from
:func:`~crm_es.projections.segments.segments_report`), owner and channel.

Scales: every answer is stored with its scale, and each figure only uses answers on its standard
scale (CSAT 1–5, NPS 0–10, CES 2.0 1–7, gap 1–7). Answers on another scale (e.g. CES 1.0 on 1–5,
lower = better) are counted in ``responses`` and ``off_scale_answers`` but never averaged in.

Complaints are folded event by event in stream (version) order up to the cut: filed → open,
resolved → resolved, reopened → open. The complaint helpers here are shared by the agenda and KPI
reports. Owners are the customers' *current* owners (the profile keeps no ownership history).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import msgspec

from crm_es.app.database import Tx
from crm_es.projections.report_query import ReportQuery
from crm_es.projections.satisfaction_metrics import (
    ces_mean,
    ces_share_high,
    csat,
    gap_mean,
    gap_negative_share,
    median,
    nps,
    percentile,
    rate,
)
from crm_es.projections.segments import segments_report
from crm_es.projections.timefmt import from_iso

UNASSIGNED: Final = "(unassigned)"
UNKNOWN_CHANNEL: Final = "(unknown)"
NO_PURCHASE: Final = "(no purchase)"
OVERALL_KEY: Final = "(all)"
DIMENSIONS: Final = ("month", "segment", "owner", "channel")
# The scale each figure is computed on; answers stored with another scale are left out of it.
STANDARD_SCALES: Final[dict[str, tuple[int, int]]] = {
    "csat": (1, 5),
    "nps": (0, 10),
    "ces": (1, 7),
    "gap": (1, 7),
}

T = TypeVar("T")


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


class Answer(msgspec.Struct, frozen=True):
    customer_id: str
    metric: str
    score: int | None
    expectation: int | None
    performance: int | None
    scale: tuple[int, int]
    channel: str | None
    occurred_at: str


class ComplaintState(msgspec.Struct):
    """One complaint folded up to the cut."""

    customer_id: str
    complaint_id: str
    filed_at: str
    severity: str | None
    channel: str | None
    sla_due: str | None
    status: str = "open"  # open | resolved
    resolved_at: str | None = None  # the last resolution
    ever_resolved: bool = False
    reopened: bool = False
    satisfied: bool | None = None  # the last follow-up


class CustomerRef(msgspec.Struct, frozen=True):
    external_ref: str | None
    owner: str  # UNASSIGNED when the customer has no owner


def load_refs(tx: Tx, tables: dict[str, str]) -> dict[str, CustomerRef]:
    """External ref and current owner of every customer (facts may predate a registration)."""
    rows = tx.query(f"SELECT customer_id, external_ref, owner FROM {tables['profile']}")
    return {r[0]: CustomerRef(r[1], r[2] or UNASSIGNED) for r in rows}


def owner_of(refs: dict[str, CustomerRef], customer_id: str) -> str:
    ref = refs.get(customer_id)
    return ref.owner if ref is not None else UNASSIGNED


def load_answers(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[Answer]:
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, metric, score, expectation, performance, scale_min, scale_max, "
        f"channel, occurred_at FROM {tables['survey_answers']} WHERE {cut} "
        "ORDER BY customer_id, survey_id",
        params,
    )
    return [Answer(r[0], r[1], r[2], r[3], r[4], (int(r[5]), int(r[6])), r[7], r[8]) for r in rows]


def fold_complaints(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[ComplaintState]:
    """Every complaint filed by the cut, with its state as of the cut."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, complaint_id, kind, severity, channel, sla_due, satisfied, "
        f"occurred_at FROM {tables['complaint_events']} WHERE {cut} "
        "ORDER BY customer_id, version",
        params,
    )
    states: dict[tuple[str, str], ComplaintState] = {}
    for cid, complaint_id, kind, severity, channel, sla_due, satisfied, occurred_at in rows:
        key = (cid, complaint_id)
        if kind == "filed":
            states[key] = ComplaintState(cid, complaint_id, occurred_at, severity, channel, sla_due)
            continue
        state = states.get(key)
        if state is None:  # its filing is outside the cut
            continue
        if kind == "resolved":
            state.status, state.resolved_at, state.ever_resolved = "resolved", occurred_at, True
        elif kind == "reopened":
            state.status, state.reopened = "open", True
        elif kind == "followed_up" and satisfied is not None:
            state.satisfied = bool(satisfied)
    return sorted(states.values(), key=lambda s: (s.filed_at, s.customer_id, s.complaint_id))


def hours_between(start: str, end: str) -> float:
    return (from_iso(end) - from_iso(start)).total_seconds() / 3600


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def survey_fields(answers: list[Answer]) -> dict[str, Any]:
    def on_scale(metric: str) -> list[Answer]:
        return [a for a in answers if a.metric == metric and a.scale == STANDARD_SCALES[metric]]

    scores = {m: [a.score for a in on_scale(m) if a.score is not None] for m in ("csat", "nps")}
    ces = [a.score for a in on_scale("ces") if a.score is not None]
    gaps = [
        (float(a.expectation), float(a.performance))
        for a in on_scale("gap")
        if a.expectation is not None and a.performance is not None
    ]
    standard = len(scores["csat"]) + len(scores["nps"]) + len(ces) + len(gaps)
    return {
        "responses": len(answers),
        "csat_answers": len(scores["csat"]),
        "nps_answers": len(scores["nps"]),
        "ces_answers": len(ces),
        "gap_answers": len(gaps),
        "off_scale_answers": len(answers) - standard,
        "csat": csat(scores["csat"]),
        "nps": nps(scores["nps"]),
        "ces_mean": ces_mean(ces),
        "ces_share_high": ces_share_high(ces),
        "gap_mean": gap_mean(gaps),
        "gap_negative_share": gap_negative_share(gaps),
    }


def complaint_fields(states: list[ComplaintState], as_of_iso: str) -> dict[str, Any]:
    resolved = [s for s in states if s.status == "resolved" and s.resolved_at is not None]
    hours = [hours_between(s.filed_at, s.resolved_at) for s in resolved if s.resolved_at]
    breached = sum(
        1
        for s in states
        if s.sla_due is not None
        and (
            (s.status == "resolved" and s.resolved_at is not None and s.resolved_at > s.sla_due)
            or (s.status == "open" and s.sla_due < as_of_iso)
        )
    )
    ever = [s for s in states if s.ever_resolved]
    followed = [s for s in states if s.satisfied is not None]
    return {
        "filed": len(states),
        "open": sum(1 for s in states if s.status == "open"),
        "resolved": len(resolved),
        "resolution_hours_median": _round(median(hours)),
        "resolution_hours_p90": _round(percentile(hours, 90.0)),
        "sla_breach_rate": rate(breached, len(states)),
        "reopen_rate": rate(sum(1 for s in ever if s.reopened), len(ever)),
        "followup_satisfaction_rate": rate(sum(1 for s in followed if s.satisfied), len(followed)),
    }


def group_by(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    """Items grouped by key, keys sorted."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return dict(sorted(groups.items()))


def satisfaction_report(tx: Tx, tables: dict[str, str], query: ReportQuery) -> SatisfactionReport:
    refs = load_refs(tx, tables)
    segments = {c.customer_id: c.segment for c in segments_report(tx, tables, query).customers}
    answers = load_answers(tx, tables, query)
    complaints = fold_complaints(tx, tables, query)

    def segment(cid: str) -> str:
        return segments.get(cid) or NO_PURCHASE

    answer_keys: dict[str, Callable[[Answer], str]] = {
        "month": lambda a: a.occurred_at[:7],
        "segment": lambda a: segment(a.customer_id),
        "owner": lambda a: owner_of(refs, a.customer_id),
        "channel": lambda a: a.channel or UNKNOWN_CHANNEL,
    }
    complaint_keys: dict[str, Callable[[ComplaintState], str]] = {
        "month": lambda c: c.filed_at[:7],
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
