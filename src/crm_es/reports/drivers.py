"""The drivers report: which factors make customers dissatisfied, neutral or satisfied
(不满意因素 / 中性因素 / 满意因素), how each moves with the overall score and with churn, and
which to fix first.

A factor is a survey topic (an answer's ``topic``: product_quality, delivery, …) or a complaint
category (every complaint is an observation of its category). Only what occurred by ``as_of``
and was recorded by ``known_at`` counts. The maths and its definitions are in
:mod:`crm_es.analytics.drivers`; in short:

* survey answers on their standard scale (CSAT 1–5, NPS 0–10, CES 1–7, gap 1–7) count, each
  classed dissatisfied / neutral / satisfied by its metric's definition and put on a 0–100
  score; answers on another scale are counted in ``off_scale_answers`` only;
* a complaint is dissatisfied while open or when its last follow-up found the customer
  unsatisfied, satisfied when the follow-up found them satisfied, neutral when resolved without
  a follow-up (scores 0 / 50 / 100);
* **overall score** of a customer: the mean 0–100 score of their CSAT and NPS answers that name
  no topic (the overall question); ``overall_r`` correlates it, across customers, with the
  customer's mean score on the factor;
* **churn within N days** (``churn_days``): an observation at least N days older than the as-of
  day counts, with the outcome whether its customer was churned N days after it — explicitly
  (``CustomerChurned`` not yet won back) or by the one churn rule
  (:mod:`crm_es.analytics.churn_rule`) on the purchase days known by then; ``churn_r``
  correlates that outcome with the observation's score;
* **ranking**: priority = dissatisfied share × (1 + max(overall_r, 0) + max(−churn_r, 0)),
  highest first (ties: more dissatisfied, then lower mean score).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec
import numpy as np

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.analytics.drivers import (
    DISSATISFIED,
    NEUTRAL,
    SATISFIED,
    FactorFigures,
    FloatArray,
    IntArray,
    answer_scores,
    answer_sentiments,
    churned_on,
    complaint_sentiments,
    customer_means,
    factor_figures,
    priorities,
    ranking,
    sentiment_scores,
)
from crm_es.analytics.satisfaction import rate
from crm_es.domain.errors import InvalidValue
from crm_es.domain.survey_topics import TOPIC_LABELS
from crm_es.domain.times import day_number
from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.facts.feedback import STANDARD_SCALES, Answer, fold_complaints, load_answers
from crm_es.reports.facts.purchase_arrays import load_customer_columns, load_purchase_facts
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

SURVEY_TOPIC: Final = "survey_topic"
COMPLAINT_CATEGORY: Final = "complaint_category"
OVERALL_METRICS: Final = ("csat", "nps")
MAX_CHURN_DAYS: Final = 3650  # ten years, as --churn-days takes
DEFINITIONS: Final = {
    "sentiment": "CSAT 4-5 satisfied, 3 neutral, 1-2 dissatisfied; NPS 9-10 / 7-8 / 0-6; "
    "CES 5-7 / 4 / 1-3; gap (performance - expectation) >0 / 0 / <0; a complaint: satisfied "
    "at follow-up / resolved without follow-up / open or not satisfied at follow-up",
    "score": "each answer on 0-100: (score - low) / (high - low) x 100; a gap g as 50 + 50g/6; "
    "a complaint 0 / 50 / 100",
    "overall_r": "Pearson r across customers: mean score on the factor vs mean score of the "
    "customer's CSAT and NPS answers without a topic",
    "churn_r": "Pearson r across observations at least churn_days before as_of: score vs the "
    "customer being churned (explicitly or by the churn rule) churn_days after it",
    "priority": "dissatisfied share x (1 + max(overall_r, 0) + max(-churn_r, 0)), highest "
    "first; ties: more dissatisfied, lower mean score",
}


class DriverFactor(msgspec.Struct, frozen=True):
    """One factor; the fields a table shows first come first."""

    rank: int  # 1: the factor to fix first
    factor: str  # a survey topic code or a complaint category
    label: str | None  # the seeds' Chinese term of a default topic
    source: str  # survey_topic | complaint_category
    dissatisfied_share: float | None  # % of observations
    mean_score: float | None  # 0-100
    overall_r: float | None
    churn_r: float | None
    priority: float
    neutral_share: float | None
    satisfied_share: float | None
    churn_rate: float | None  # % of the churn pairs
    observations: int  # answers on the topic, or complaints of the category
    customers: int
    dissatisfied: int
    neutral: int
    satisfied: int
    overall_pairs: int  # customers with both a score on the factor and an overall score
    churn_pairs: int  # observations at least churn_days before as_of
    churned: int  # of the churn pairs, churned churn_days later


class DriversReport(msgspec.Struct, frozen=True):
    as_of: str
    known_at: str
    churn_days: int
    rule: ChurnRule
    definitions: dict[str, str]
    topic_answers: int  # answers on a standard scale that name a topic
    overall_answers: int  # CSAT and NPS answers on a standard scale that name none
    off_scale_answers: int  # answers naming a topic on a non-standard scale: not counted
    complaints: int
    factors: list[DriverFactor]


@dataclass
class _Observations:
    """The observations of every factor, as columns (one entry per answer or complaint; the
    sentiments and scores in parts, one per metric, in the same order)."""

    factor: list[int] = field(default_factory=list)
    customer: list[int] = field(default_factory=list)
    day: list[str] = field(default_factory=list)
    sentiment: list[IntArray] = field(default_factory=list)
    score: list[FloatArray] = field(default_factory=list)


def drivers_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    churn_days: int = 90,
    rule: ChurnRule | None = None,
) -> DriversReport:
    if not 1 <= churn_days <= MAX_CHURN_DAYS:  # as --churn-days takes
        raise InvalidValue("churn_days", churn_days, f"must be 1 to {MAX_CHURN_DAYS} days")
    rule = rule or ChurnRule()
    customers = load_customer_columns(tx, tables, query)
    index = {cid: i for i, cid in enumerate(customers.ids)}
    answers = [a for a in load_answers(tx, tables, query) if a.customer_id in index]
    on_scale = [a for a in answers if a.scale == STANDARD_SCALES.get(a.metric)]
    topical = [a for a in on_scale if a.topic is not None]
    overall_answers = [a for a in on_scale if a.topic is None and a.metric in OVERALL_METRICS]
    complaints = [c for c in fold_complaints(tx, tables, query) if c.customer_id in index]

    names: list[tuple[str, str]] = []  # (source, factor), by index
    obs = _Observations()
    _add_answers(obs, names, topical, index)
    keys = {key: i for i, key in enumerate(names)}
    for c in complaints:
        key = (COMPLAINT_CATEGORY, c.category or "(none)")
        obs.factor.append(keys.setdefault(key, len(keys)))
        obs.customer.append(index[c.customer_id])
        obs.day.append(c.filed_day)
    names = list(keys)
    if complaints:
        obs.sentiment.append(
            complaint_sentiments(
                np.array([c.status == "open" for c in complaints], dtype=bool),
                np.array([-1 if c.satisfied is None else int(c.satisfied) for c in complaints]),
            )
        )
        obs.score.append(sentiment_scores(obs.sentiment[-1]))

    factor = np.asarray(obs.factor, dtype=np.int64)
    customer = np.asarray(obs.customer, dtype=np.int64)
    sentiment = _joined(obs.sentiment, np.int64)
    score = _joined(obs.score, np.float64)
    overall = _overall_means(overall_answers, index, len(customers.ids))
    days = _day_numbers(obs.day)
    later = days + churn_days
    known = later <= day_number(query.reference_date)
    facts = load_purchase_facts(tx, tables, query, TIER_CURRENCY, customers.ids)
    churned = np.zeros(factor.size, dtype=bool)
    churned[known] = churned_on(
        facts.day_owner, facts.day_of, _churn_facts(tx, tables, query, index),
        customer[known], later[known], rule,
    )  # fmt: skip
    figures = factor_figures(
        factor, customer, score, sentiment, len(names), overall, known, churned
    )
    rows = _rows(names, figures)
    return DriversReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        churn_days=churn_days,
        rule=rule,
        definitions=dict(DEFINITIONS),
        topic_answers=len(topical),
        overall_answers=len(overall_answers),
        off_scale_answers=sum(
            1 for a in answers if a.topic is not None and a.scale != STANDARD_SCALES.get(a.metric)
        ),
        complaints=len(complaints),
        factors=rows,
    )


def _add_answers(
    obs: _Observations, names: list[tuple[str, str]], answers: list[Answer], index: dict[str, int]
) -> None:
    """Answers naming a topic as observations of their topic, metric by metric."""
    keys: dict[tuple[str, str], int] = {}
    for metric in STANDARD_SCALES:
        mine = [a for a in answers if a.metric == metric]
        if not mine:
            continue
        values = np.array([_value(a) for a in mine], dtype=np.int64)
        obs.sentiment.append(answer_sentiments(metric, values))
        obs.score.append(answer_scores(metric, values))
        for a in mine:
            obs.factor.append(keys.setdefault((SURVEY_TOPIC, str(a.topic)), len(keys)))
            obs.customer.append(index[a.customer_id])
            obs.day.append(a.day)
    names.extend(keys)


def _value(a: Answer) -> int:
    """The score, or performance − expectation for a gap answer."""
    if a.metric == "gap":
        return int(a.performance or 0) - int(a.expectation or 0)
    return int(a.score or 0)


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _day_numbers(days: Sequence[str]) -> IntArray:
    """ISO dates as days since 1970-01-01 (as :func:`~crm_es.domain.times.day_number`)."""
    if not days:
        return np.zeros(0, dtype=np.int64)
    return np.array(days, dtype="datetime64[D]").astype(np.int64)


def _overall_means(answers: list[Answer], index: dict[str, int], n: int) -> FloatArray:
    """Each customer's mean 0-100 score over their overall answers (NaN: none)."""
    customer: list[int] = []
    scores: list[FloatArray] = []
    for metric in OVERALL_METRICS:
        mine = [a for a in answers if a.metric == metric]
        if mine:
            scores.append(answer_scores(metric, np.array([_value(a) for a in mine])))
            customer += [index[a.customer_id] for a in mine]
    return customer_means(np.asarray(customer, dtype=np.int64), _joined(scores, np.float64), n)


def _churn_facts(
    tx: Tx, tables: dict[str, str], query: ReportQuery, index: dict[str, int]
) -> tuple[IntArray, IntArray, np.ndarray]:
    """Every explicit churn and win-back by the cut: (customer, day, is_churn), by customer
    index then business time."""
    cut, params = query.cut()
    rows = tx.query(
        f"SELECT customer_id, kind, day FROM {tables['churn_facts']} WHERE {cut} "
        "ORDER BY customer_id, occurred_at, version",
        params,
    )
    kept = sorted(
        ((index[cid], n, kind == "churned", day) for n, (cid, kind, day) in enumerate(rows)
         if cid in index),
    )  # fmt: skip
    return (
        np.array([k[0] for k in kept], dtype=np.int64),
        _day_numbers([k[3] for k in kept]),
        np.array([k[2] for k in kept], dtype=bool),
    )


def _rows(names: list[tuple[str, str]], f: FactorFigures) -> list[DriverFactor]:
    if not names:
        return []
    counts = f.sentiments
    with np.errstate(invalid="ignore", divide="ignore"):
        unhappy = counts[:, DISSATISFIED] / np.maximum(f.observations, 1)
    priority = priorities(unhappy, f.overall_r, f.churn_r)
    order = ranking(priority, counts[:, DISSATISFIED], f.mean_score)
    rows = []
    for rank, i in enumerate(order.tolist(), start=1):
        source, name = names[i]
        total = int(f.observations[i])
        rows.append(
            DriverFactor(
                rank=rank,
                factor=name,
                source=source,
                label=TOPIC_LABELS.get(name) if source == SURVEY_TOPIC else None,
                observations=total,
                customers=int(f.customers[i]),
                dissatisfied=int(counts[i, DISSATISFIED]),
                neutral=int(counts[i, NEUTRAL]),
                satisfied=int(counts[i, SATISFIED]),
                dissatisfied_share=rate(int(counts[i, DISSATISFIED]), total),
                neutral_share=rate(int(counts[i, NEUTRAL]), total),
                satisfied_share=rate(int(counts[i, SATISFIED]), total),
                mean_score=_rounded(f.mean_score[i], 2),
                overall_r=_rounded(f.overall_r[i], 4),
                overall_pairs=int(f.overall_pairs[i]),
                churn_r=_rounded(f.churn_r[i], 4),
                churn_pairs=int(f.churn_pairs[i]),
                churned=int(f.churned[i]),
                churn_rate=rate(int(f.churned[i]), int(f.churn_pairs[i])),
                priority=round(float(priority[i]), 4),
            )
        )
    return rows


def _rounded(value: float, digits: int) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


def table_rows(report: DriversReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(f) for f in report.factors]
