"""The churn rule, the one definition every report uses: churned after max(k × the customer's
median inter-purchase interval, a floor) days without a purchase, at risk after a share of that,
or churned explicitly (a ``CustomerChurned`` event). One-time buyers use the floor: the hiatus
rule (Wübben & von Wangenheim 2008, about nine months).

Won back, by the same rule: a customer returns on a purchase day that came after more days of
silence than their threshold as it stood before that day (they had churned by the rule then), or
on an explicit ``CustomerWonBack``. They count as won back from that day for one threshold (as of
the report's date), unless churned again; after that they are a repeat or loyal customer.

On arrays, one entry per customer: purchase days are counted on distinct days, days are whole
numbers (days since 1970-01-01).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from crm_es.analytics.churn_settings import ChurnRule

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["NO_RETURN", "STATUS_NAMES", "ChurnRule", "churn_thresholds", "rule_return_days",
           "rule_statuses", "won_back"]  # fmt: skip

# Codes of :func:`rule_statuses`, index into STATUS_NAMES.
STATUS_NAMES: Final = ("prospect", "active", "at_risk", "churned")
_PROSPECT, _ACTIVE, _AT_RISK, _CHURNED = range(4)
# "Never returned" among day numbers, which are negative before 1970.
NO_RETURN: Final = -(2**62)


def churn_thresholds(
    purchase_days: IntArray, median_gap: FloatArray, rule: ChurnRule
) -> FloatArray:
    """Days of silence after which each customer counts as churned."""
    floor = float(rule.floor_days)
    with np.errstate(invalid="ignore"):
        by_gaps = np.maximum(rule.k * median_gap, floor)
    return np.where(purchase_days >= 2, by_gaps, floor)


def rule_return_days(owner: IntArray, days: IntArray, rule: ChurnRule, n: int) -> IntArray:
    """Each of ``n`` customers' latest return by the rule: the last purchase day that followed
    more days of silence than the customer's threshold on the days before it
    (:data:`NO_RETURN`: none). ``owner``/``days``: distinct purchase days sorted by customer,
    then day."""
    returned = np.full(n, NO_RETURN, dtype=np.int64)
    if days.size < 2:
        return returned
    gaps = np.diff(days)  # gaps[i]: from days[i] to days[i + 1]
    # A threshold is never below the floor: only longer gaps can end a churn.
    long = np.flatnonzero((owner[1:] == owner[:-1]) & (gaps > rule.floor_days))
    firsts = np.searchsorted(owner, owner[long], side="left")
    for i, first in zip(long.tolist(), firsts.tolist(), strict=True):
        before = gaps[first:i]  # the gaps between the days up to days[i]
        threshold = float(rule.floor_days)
        if before.size:
            threshold = max(rule.k * float(np.median(before)), threshold)
        if gaps[i] > threshold:
            returned[owner[i]] = days[i + 1]  # gaps are in day order: the last one wins
    return returned


def won_back(returned: IntArray, thresholds: FloatArray, today: int) -> BoolArray:
    """Who counts as won back on day ``today``: returned within their threshold."""
    back: BoolArray = (returned != NO_RETURN) & (today - returned <= thresholds)
    return back


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
