"""The churn rule, the one definition every report uses: churned after max(k × the customer's
median inter-purchase interval, a floor) days without a purchase, at risk after a share of that,
or churned explicitly (a ``CustomerChurned`` event). One-time buyers use the floor: the hiatus
rule (Wübben & von Wangenheim 2008, about nine months).

On arrays, one entry per customer: purchase days are counted on distinct days, days are whole
numbers (days since 1970-01-01).
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Codes of :func:`rule_statuses`, index into STATUS_NAMES.
STATUS_NAMES: Final = ("prospect", "active", "at_risk", "churned")
_PROSPECT, _ACTIVE, _AT_RISK, _CHURNED = range(4)


class ChurnRule(msgspec.Struct, frozen=True):
    """Churned after max(k × median inter-purchase interval, floor) days without a purchase;
    at risk after ``at_risk_share`` of that. One-time buyers use the floor (hiatus rule)."""

    k: float = 3.0
    floor_days: int = 270
    at_risk_share: float = 0.5


def churn_thresholds(
    purchase_days: IntArray, median_gap: FloatArray, rule: ChurnRule
) -> FloatArray:
    """Days of silence after which each customer counts as churned."""
    floor = float(rule.floor_days)
    with np.errstate(invalid="ignore"):
        by_gaps = np.maximum(rule.k * median_gap, floor)
    return np.where(purchase_days >= 2, by_gaps, floor)


def rule_statuses(
    purchase_days: IntArray,
    last_day: IntArray,
    thresholds: FloatArray,
    explicit: BoolArray,
    today: int,
    rule: ChurnRule,
) -> IntArray:
    """Each customer's status on day ``today``, as codes into :data:`STATUS_NAMES`: churned
    explicitly or by the rule, prospect without a purchase, at risk, or active."""
    silent = today - last_day
    status = np.select(
        [
            explicit,
            purchase_days == 0,
            silent > thresholds,
            silent > rule.at_risk_share * thresholds,
        ],
        [_CHURNED, _PROSPECT, _CHURNED, _AT_RISK],
        default=_ACTIVE,
    )
    return np.asarray(status, dtype=np.int64)
