"""Drivers of satisfaction: per factor (a survey topic, a complaint category), how its answers
split into dissatisfied / neutral / satisfied, its mean score, how it moves with the overall
score and with churn, and which factor to fix first. Pure numpy on arrays, one entry per
observation (an answer or a complaint); the caller maps factors and customers to indexes.

Definitions (one per metric, from :mod:`crm_es.analytics.satisfaction`, on the standard scales):

* **sentiment** — CSAT 1–5: satisfied 4–5 (as CSAT counts them), neutral 3, dissatisfied 1–2;
  NPS 0–10: promoters 9–10 satisfied, passives 7–8 neutral, detractors 0–6 dissatisfied; CES 2.0
  1–7: 5–7 satisfied (the CES "high" share), 4 neutral, 1–3 dissatisfied; gap (performance −
  expectation, "CS = 表现 − 期望"): above 0 satisfied, 0 neutral, below dissatisfied.
* **score** — every answer on one 0–100 scale so that metrics can be averaged together: its
  position on its scale ((score − low) / (high − low) × 100); a gap g on 1–7 as 50 + 50·g/6
  (0 = the worst shortfall, 50 = as expected, 100 = the largest surplus).
* **overall r** — Pearson correlation, over the customers with both, of the customer's mean
  score on the factor and the customer's mean overall score (given by the caller: answers that
  rate no factor). Positive: the factor moves with overall satisfaction.
* **churn r** — Pearson (point-biserial) correlation, over the observations old enough to have
  an outcome, of the observation's score and whether its customer was churned N days later
  (:func:`churned_on`). Negative: low scores go with churn.
* **priority** — dissatisfied share (0–1) × (1 + max(overall r, 0) + max(−churn r, 0)): the
  share of unhappy answers, weighted up to three times by how strongly the factor moves
  overall satisfaction and churn (an unknown correlation weighs 0). Ranked highest first; ties by
  more dissatisfied answers, then by the lower mean score.

A correlation needs :data:`MIN_PAIRS` pairs and variance on both sides, else it is NaN.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from crm_es.analytics.churn_rule import ChurnRule, churn_thresholds
from crm_es.analytics.satisfaction import (
    CES_HIGH,
    CES_SCALE,
    CSAT_SATISFIED,
    CSAT_SCALE,
    NPS_DETRACTORS,
    NPS_PROMOTERS,
    NPS_SCALE,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SENTIMENTS: Final = ("dissatisfied", "neutral", "satisfied")
DISSATISFIED, NEUTRAL, SATISFIED = range(3)
CSAT_NEUTRAL: Final = 3  # "3 is neutral, not satisfied" (satisfaction.CSAT_SATISFIED)
CES_NEUTRAL: Final = 4  # the middle of 1–7, below CES_HIGH
GAP_SCALE: Final = range(1, 8)  # expectation and performance, SERVQUAL style
MIN_PAIRS: Final = 3
_SCALES: Final = {"csat": CSAT_SCALE, "nps": NPS_SCALE, "ces": CES_SCALE}


def answer_sentiments(metric: str, values: IntArray) -> IntArray:
    """Sentiment codes (index into :data:`SENTIMENTS`) of answers of ``metric``; ``values`` are
    the scores, or for ``gap`` performance − expectation."""
    v = np.asarray(values, dtype=np.int64)
    _check(metric, v)
    if metric == "csat":
        happy, unhappy = _within(v, CSAT_SATISFIED), v < CSAT_NEUTRAL
    elif metric == "nps":
        happy, unhappy = _within(v, NPS_PROMOTERS), _within(v, NPS_DETRACTORS)
    elif metric == "ces":
        happy, unhappy = _within(v, CES_HIGH), v < CES_NEUTRAL
    else:
        happy, unhappy = v > 0, v < 0
    codes = np.full(v.shape, NEUTRAL, dtype=np.int64)
    codes[happy] = SATISFIED
    codes[unhappy] = DISSATISFIED
    return codes


def answer_scores(metric: str, values: IntArray) -> FloatArray:
    """Answers of ``metric`` on the common 0–100 scale (see the module's definitions)."""
    v = np.asarray(values, dtype=np.int64)
    _check(metric, v)
    if metric == "gap":
        span = GAP_SCALE.stop - 1 - GAP_SCALE.start
        return 50.0 + 50.0 * v.astype(np.float64) / span
    scale = _SCALES[metric]
    low, high = scale.start, scale.stop - 1
    return (v - low).astype(np.float64) * 100.0 / (high - low)


def complaint_sentiments(open_: BoolArray, followed_up: IntArray) -> IntArray:
    """A complaint as a factor's observation: dissatisfied while open or when its last
    follow-up found the customer unsatisfied (0), satisfied when it found them satisfied (1),
    neutral when resolved without a follow-up (-1)."""
    codes = np.full(np.shape(open_), NEUTRAL, dtype=np.int64)
    codes[np.asarray(followed_up) == 1] = SATISFIED
    codes[(np.asarray(followed_up) == 0) | np.asarray(open_, dtype=bool)] = DISSATISFIED
    return codes


def sentiment_scores(codes: IntArray) -> FloatArray:
    """0, 50 or 100 for dissatisfied, neutral, satisfied (the score of a complaint)."""
    return np.asarray(codes, dtype=np.float64) * 50.0


def _within(v: IntArray, band: range) -> BoolArray:
    return (v >= band.start) & (v < band.stop)


def _check(metric: str, v: IntArray) -> None:
    if metric == "gap":
        span = GAP_SCALE.stop - 1 - GAP_SCALE.start
        scale = range(-span, span + 1)
    elif metric in _SCALES:
        scale = _SCALES[metric]
    else:
        raise ValueError(f"no sentiment is defined for metric {metric!r}")
    if v.size and (v.min() < scale.start or v.max() >= scale.stop):
        bad = v[(v < scale.start) | (v >= scale.stop)][0]
        raise ValueError(f"{metric} value {bad} is outside {scale.start}..{scale.stop - 1}")


def customer_means(customer: IntArray, score: FloatArray, n_customers: int) -> FloatArray:
    """Each customer's mean score (NaN for a customer without one)."""
    counts = np.bincount(customer, minlength=n_customers).astype(np.float64)
    sums = np.bincount(customer, weights=score, minlength=n_customers)
    with np.errstate(invalid="ignore", divide="ignore"):
        means: FloatArray = sums / counts
    return means


def grouped_pearson(
    group: IntArray, x: FloatArray, y: FloatArray, n_groups: int
) -> tuple[FloatArray, IntArray]:
    """Pearson r of ``x`` and ``y`` within each group (NaN below :data:`MIN_PAIRS` pairs or
    without variance on either side), and the number of pairs. Centred on each group's means
    before the products are summed, so equal values give exactly zero variance."""
    n = np.bincount(group, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(group, weights=x, minlength=n_groups) / n
        my = np.bincount(group, weights=y, minlength=n_groups) / n
    dx, dy = x - mx[group], y - my[group]
    sxy = np.bincount(group, weights=dx * dy, minlength=n_groups)
    sxx = np.bincount(group, weights=dx * dx, minlength=n_groups)
    syy = np.bincount(group, weights=dy * dy, minlength=n_groups)
    # Rounding leaves a few ulps where the values were all equal: that is no variance.
    tiny = 1e-18 * np.maximum(n, 1) * (np.abs(mx) + np.abs(my) + 1.0) ** 2
    usable = (n >= MIN_PAIRS) & (sxx > tiny) & (syy > tiny)
    r = np.full(n_groups, np.nan)
    r[usable] = np.clip(sxy[usable] / np.sqrt(sxx[usable] * syy[usable]), -1.0, 1.0)
    return r, n.astype(np.int64)


def churned_on(
    owner: IntArray,
    days: IntArray,
    facts: tuple[IntArray, IntArray, BoolArray],
    customers: IntArray,
    on_days: IntArray,
    rule: ChurnRule,
) -> BoolArray:
    """Whether each customer ``customers[i]`` was churned on day ``on_days[i]``: explicitly (its
    latest churn fact by then is a churn, not a win-back) or by the churn rule as it stood then
    (more silent days since its last purchase day than max(k × median gap, floor) of the days up
    to it; no purchase day by then: not churned by the rule).

    ``owner``/``days``: distinct purchase days, by customer then day. ``facts``: (customer,
    day, is_churn) of every explicit churn and win-back, by customer then business time."""
    churned = _explicitly_churned(facts, customers, on_days)
    if days.size == 0 or customers.size == 0:
        return churned
    base = int(min(days.min(), on_days.min()))
    span = int(max(days.max(), on_days.max())) - base + 1
    keys = owner * span + (days - base)
    last = np.searchsorted(keys, customers * span + (on_days - base), side="right") - 1
    has = last >= 0
    has[has] = owner[last[has]] == customers[has]
    silent = np.where(has, on_days - days[np.maximum(last, 0)], 0)
    # A threshold is never below the floor: only a longer silence needs the median.
    maybe = np.flatnonzero(has & (silent > rule.floor_days))
    if maybe.size:
        firsts = np.searchsorted(owner, customers[maybe], side="left")
        counts = (last[maybe] - firsts + 1).astype(np.int64)
        medians = np.full(maybe.size, np.nan)
        for i, (first, end) in enumerate(zip(firsts.tolist(), last[maybe].tolist(), strict=True)):
            if end > first:
                medians[i] = float(np.median(np.diff(days[first : end + 1])))
        thresholds = churn_thresholds(counts, medians, rule)
        churned[maybe] |= silent[maybe] > thresholds
    return churned


def _explicitly_churned(
    facts: tuple[IntArray, IntArray, BoolArray], customers: IntArray, on_days: IntArray
) -> BoolArray:
    owner, days, is_churn = facts
    out = np.zeros(customers.size, dtype=bool)
    if owner.size == 0 or customers.size == 0:
        return out
    base = int(min(days.min(), on_days.min()))
    span = int(max(days.max(), on_days.max())) - base + 1
    keys = owner * span + (days - base)
    at = np.searchsorted(keys, customers * span + (on_days - base), side="right") - 1
    ok = at >= 0
    ok[ok] = owner[at[ok]] == customers[ok]
    out[ok] = is_churn[at[ok]]
    return out


class FactorFigures(NamedTuple):
    """Per factor (index), aligned arrays."""

    observations: IntArray
    customers: IntArray
    sentiments: IntArray  # (factors, 3): counts of dissatisfied, neutral, satisfied
    mean_score: FloatArray
    overall_r: FloatArray
    overall_pairs: IntArray  # customers with both a factor score and an overall score
    churn_r: FloatArray
    churn_pairs: IntArray  # observations old enough to have an outcome
    churned: IntArray  # of those, followed by churn


def factor_figures(
    factor: IntArray,
    customer: IntArray,
    score: FloatArray,
    sentiment: IntArray,
    n_factors: int,
    overall: FloatArray,
    outcome_known: BoolArray,
    churned: BoolArray,
) -> FactorFigures:
    """The figures of every factor from its observations. ``overall``: each customer's mean
    overall score (NaN: none), one entry per customer index; ``outcome_known``/``churned``: per
    observation, whether N days have passed since it, and whether its customer was churned
    then."""
    observations = np.bincount(factor, minlength=n_factors).astype(np.int64)
    sentiments = np.zeros((n_factors, len(SENTIMENTS)), dtype=np.int64)
    np.add.at(sentiments, (factor, sentiment), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(factor, weights=score, minlength=n_factors) / observations
    # Per (factor, customer): the customer's mean score on the factor.
    n_customers = max(overall.size, 1)
    pair, inverse = np.unique(factor * n_customers + customer, return_inverse=True)
    pair_factor, pair_customer = pair // n_customers, pair % n_customers
    pair_mean = customer_means(inverse.reshape(-1), score, pair.size)
    customers = np.bincount(pair_factor, minlength=n_factors).astype(np.int64)
    with_overall = ~np.isnan(overall[pair_customer])
    overall_r, overall_pairs = grouped_pearson(
        pair_factor[with_overall],
        pair_mean[with_overall],
        overall[pair_customer[with_overall]],
        n_factors,
    )
    known = np.asarray(outcome_known, dtype=bool)
    flags = np.asarray(churned, dtype=bool)
    churn_r, churn_pairs = grouped_pearson(
        factor[known], score[known], flags[known].astype(np.float64), n_factors
    )
    gone = np.bincount(factor[known & flags], minlength=n_factors).astype(np.int64)
    return FactorFigures(
        observations, customers, sentiments, mean_score, overall_r, overall_pairs,
        churn_r, churn_pairs, gone,
    )  # fmt: skip


def priorities(dissatisfied: FloatArray, overall_r: FloatArray, churn_r: FloatArray) -> FloatArray:
    """The module's priority: dissatisfied share (0–1) × (1 + max(r_overall, 0) +
    max(−r_churn, 0)), an unknown (NaN) correlation counting 0."""
    lift = np.nan_to_num(np.maximum(overall_r, 0.0)) + np.nan_to_num(np.maximum(-churn_r, 0.0))
    weighted: FloatArray = np.asarray(dissatisfied, dtype=np.float64) * (1.0 + lift)
    return weighted


def ranking(priority: FloatArray, dissatisfied_count: IntArray, mean_score: FloatArray) -> IntArray:
    """Factor indexes, the one to fix first first: highest priority, then more dissatisfied
    answers, then lower mean score (NaN last), then index."""
    mean = np.where(np.isnan(mean_score), np.inf, mean_score)
    order = np.lexsort((np.arange(priority.size), mean, -dissatisfied_count, -priority))
    return np.asarray(order, dtype=np.int64)
