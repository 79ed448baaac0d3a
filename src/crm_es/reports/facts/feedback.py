"""Feedback facts as of a query: survey answers, complaints folded to their state, and the
figures every report computes from them (CSAT, NPS, CES, gap, complaint handling).

Shared by the satisfaction, agenda and KPI reports and the HTML report, so each figure has one
definition. Complaints are folded event by event in stream (version) order up to the cut:
filed → open, resolved → resolved, reopened → open. Months are cut in the store's time zone (the
``day`` each fact row keeps).

Scales: every answer is stored with its scale, and each figure only uses answers on its standard
scale (CSAT 1–5, NPS 0–10, CES 2.0 1–7, gap 1–7). Answers on another scale (e.g. CES 1.0 on 1–5,
lower = better) are counted in ``responses`` and ``off_scale_answers`` but never averaged in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import msgspec

from crm_es.analytics.satisfaction import (
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
from crm_es.domain.times import from_iso
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# The scale each figure is computed on; answers stored with another scale are left out of it.
STANDARD_SCALES: Final[dict[str, tuple[int, int]]] = {
    "csat": (1, 5),
    "nps": (0, 10),
    "ces": (1, 7),
    "gap": (1, 7),
}


T = TypeVar("T")


class Answer(msgspec.Struct, frozen=True):
    customer_id: str
    metric: str
    score: int | None
    expectation: int | None
    performance: int | None
    scale: tuple[int, int]
    channel: str | None
    day: str  # in the store's time zone
    occurred_at: str
    topic: str | None = None  # the factor rated; None: an overall answer


class ComplaintState(msgspec.Struct):
    """One complaint folded up to the cut."""

    customer_id: str
    complaint_id: str
    filed_at: str
    filed_day: str  # in the store's time zone
    severity: str | None
    channel: str | None
    sla_due: str | None
    status: str = "open"  # open | resolved
    resolved_at: str | None = None  # the last resolution
    ever_resolved: bool = False
    reopened: bool = False
    satisfied: bool | None = None  # the last follow-up
    category: str | None = None  # as filed


def load_answers(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[Answer]:
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, metric, score, expectation, performance, scale_min, scale_max, "
        f"channel, day, occurred_at, topic FROM {tables['survey_answers']} WHERE {cut} "
        "ORDER BY customer_id, survey_id",
        params,
    )
    return [
        Answer(r[0], r[1], r[2], r[3], r[4], (int(r[5]), int(r[6])), r[7], r[8], r[9], r[10])
        for r in rows
    ]


def fold_complaints(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[ComplaintState]:
    """Every complaint filed by the cut, with its state as of the cut."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT customer_id, complaint_id, kind, severity, channel, sla_due, satisfied, day, "
        f"occurred_at, category FROM {tables['complaint_events']} WHERE {cut} "
        "ORDER BY customer_id, version",
        params,
    )
    states: dict[tuple[str, str], ComplaintState] = {}
    for (cid, complaint_id, kind, severity, channel, sla_due, satisfied, day, occurred_at,
         category) in rows:  # fmt: skip
        key = (cid, complaint_id)
        if kind == "filed":
            states[key] = ComplaintState(
                cid, complaint_id, occurred_at, day, severity, channel, sla_due, category=category
            )
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
