"""Satisfaction and service figures: CSAT, NPS, CES, expectation gap, medians, percentiles, rates.

Pure functions over raw answers, so the read models can store answers with their scale and
compute every score at query time (a scale change never rewrites history). Shared conventions:

* an empty input gives ``None`` ("no answers"), never 0, so a report can tell "nobody answered"
  from "everybody was unhappy";
* an answer outside the function's scale raises ``ValueError``: it means the caller mixed scales
  (e.g. a CES 1.0 answer on 1–5 fed to the CES 2.0 1–7 figures), which must not be averaged;
* reported figures (shares, scores, means, rates) are rounded to 2 decimals, half away from zero,
  from the exact fraction, so 1/8 of 1 % is 0.13 and not float- or banker's-rounding dependent;
  ``median`` and ``percentile`` are statistics for further use and are not rounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Final

import numpy as np

__all__ = [
    "ces_mean",
    "ces_share_high",
    "csat",
    "gap_mean",
    "gap_negative_share",
    "median",
    "nps",
    "percentile",
    "rate",
]

CSAT_SCALE: Final = range(1, 6)
CSAT_SATISFIED: Final = range(4, 6)  # 3 is neutral, not satisfied
NPS_SCALE: Final = range(0, 11)
NPS_PROMOTERS: Final = range(9, 11)
NPS_DETRACTORS: Final = range(0, 7)
CES_SCALE: Final = range(1, 8)  # CES 2.0: agreement on 1–7, higher = easier
CES_HIGH: Final = range(5, 8)


def csat(scores: Iterable[int]) -> float | None:
    """Share of satisfied answers (4 or 5 on 1–5) × 100."""
    answers = _checked(scores, CSAT_SCALE, "CSAT")
    if not answers:
        return None
    satisfied = sum(1 for score in answers if score in CSAT_SATISFIED)
    return _round2(Fraction(100 * satisfied, len(answers)))


def nps(scores: Iterable[int]) -> float | None:
    """Net Promoter Score: % promoters (9–10) − % detractors (0–6) on 0–10, range −100..+100."""
    answers = _checked(scores, NPS_SCALE, "NPS")
    if not answers:
        return None
    promoters = sum(1 for score in answers if score in NPS_PROMOTERS)
    detractors = sum(1 for score in answers if score in NPS_DETRACTORS)
    return _round2(Fraction(100 * (promoters - detractors), len(answers)))


def ces_mean(scores: Iterable[int]) -> float | None:
    """Customer Effort Score 2.0: mean agreement with "made it easy" on 1–7 (higher = easier)."""
    answers = _checked(scores, CES_SCALE, "CES")
    if not answers:
        return None
    return _round2(Fraction(sum(answers), len(answers)))


def ces_share_high(scores: Iterable[int]) -> float | None:
    """Share of CES 2.0 answers that agree (5–7 on 1–7) × 100."""
    answers = _checked(scores, CES_SCALE, "CES")
    if not answers:
        return None
    high = sum(1 for score in answers if score in CES_HIGH)
    return _round2(Fraction(100 * high, len(answers)))


def gap_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean expectation gap, performance − expectation ("CS = 表现 − 期望"); negative = below.

    Each pair is ``(expectation, performance)`` on the same scale; the caller guarantees the scale.
    """
    gaps = _gaps(pairs)
    if not gaps:
        return None
    # fsum is correctly rounded, so the mean does not depend on the order of the answers.
    return _round2(Fraction(math.fsum(gaps)) / len(gaps))


def gap_negative_share(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Share of answers whose performance is below the expectation × 100."""
    gaps = _gaps(pairs)
    if not gaps:
        return None
    negative = sum(1 for gap in gaps if gap < 0)
    return _round2(Fraction(100 * negative, len(gaps)))


def median(values: Iterable[float]) -> float | None:
    """Median (mean of the two middle values for an even count); ``None`` when empty."""
    return percentile(values, 50.0)


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0 ≤ p ≤ 100) with linear interpolation, as numpy's default method.

    Used for durations such as time to resolve a complaint (median, p90). ``None`` when empty.
    """
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile p must be within 0..100, got {p}")
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return None
    if not np.all(np.isfinite(data)):
        raise ValueError("percentile values must be finite numbers")
    return float(np.percentile(data, p))


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator × 100`` (e.g. SLA breaches per closed complaint); ``None`` if 0/0.

    A zero denominator means "nothing to measure", reported as ``None`` rather than 0 %.
    """
    if denominator < 0 or numerator < 0:
        raise ValueError(f"rate needs non-negative counts, got {numerator}/{denominator}")
    if denominator == 0:
        return None
    return _round2(Fraction(100 * numerator, denominator))


def _checked(scores: Iterable[int], scale: range, name: str) -> list[int]:
    answers = list(scores)
    for score in answers:
        if score not in scale:
            raise ValueError(
                f"{name} answer {score!r} is outside its scale {scale.start}..{scale.stop - 1}"
            )
    return answers


def _gaps(pairs: Iterable[tuple[float, float]]) -> list[float]:
    gaps: list[float] = []
    for expectation, performance in pairs:
        if not (math.isfinite(expectation) and math.isfinite(performance)):
            raise ValueError(f"gap answers must be finite, got ({expectation}, {performance})")
        gaps.append(performance - expectation)
    return gaps


def _round2(value: Fraction) -> float:
    """Round an exact fraction to 2 decimals, half away from zero."""
    scaled = value * 100
    magnitude = (2 * abs(scaled.numerator) + scaled.denominator) // (2 * scaled.denominator)
    return (-magnitude if scaled < 0 else magnitude) / 100
