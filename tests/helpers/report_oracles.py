"""The report figures one customer at a time, written the plain way: the oracles the
population-wide (numpy) definitions in ``crm_es.analytics`` and ``crm_es.reports.facts`` are
held equal to."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.analytics.rfm import RfmScore
from crm_es.analytics.satisfaction import median
from crm_es.reports.facts.population import LOYAL_SEGMENTS, LOYAL_TIERS
from crm_es.reports.facts.purchase_history import ChurnFacts, PurchaseHistory


def churn_threshold_days(days: list[date], rule: ChurnRule) -> float:
    if len(days) < 2:
        return float(rule.floor_days)
    gaps = [(b - a).days for a, b in pairwise(days)]
    typical = median(gaps) or 0.0
    return max(rule.k * typical, float(rule.floor_days))


def return_day(
    history: PurchaseHistory | None, churn: ChurnFacts | None, rule: ChurnRule
) -> date | None:
    """The latest return: a purchase day after a silence longer than the threshold of the days
    before it, or an explicit win-back, whichever is later."""
    days = history.days if history else []
    by_rule = [
        days[i]
        for i in range(1, len(days))
        if (days[i] - days[i - 1]).days > churn_threshold_days(days[:i], rule)
    ]
    found = [*by_rule, *([churn.won_back_on] if churn and churn.won_back_on else [])]
    return max(found) if found else None


def is_won_back(
    history: PurchaseHistory | None, churn: ChurnFacts | None, as_of: date, rule: ChurnRule
) -> bool:
    """Returned within the threshold, and not churned."""
    returned = return_day(history, churn, rule)
    threshold = churn_threshold_days(history.days if history else [], rule)
    return (
        returned is not None
        and (as_of - returned).days <= threshold
        and rule_status(history, churn, as_of, rule) != "churned"
    )


def rule_status(
    history: PurchaseHistory | None, churn: ChurnFacts | None, as_of: date, rule: ChurnRule
) -> str:
    """``churned`` (explicitly or by the hiatus rule), ``at_risk``, ``active`` or ``prospect``."""
    if churn is not None and churn.explicit_churned:
        return "churned"
    if history is None or not history.days:
        return "prospect"
    threshold = churn_threshold_days(history.days, rule)
    silent = (as_of - history.days[-1]).days
    if silent > threshold:
        return "churned"
    if silent > rule.at_risk_share * threshold:
        return "at_risk"
    return "active"


def lifecycle_stage(
    status: str, won_back: bool, purchase_days: int, score: RfmScore | None, tier: str
) -> str:
    """One customer's lifecycle stage."""
    if status == "churned":
        return "churned"
    if won_back:
        return "won_back"
    if purchase_days == 0:
        return "prospect"
    if (score is not None and score.segment in LOYAL_SEGMENTS) or tier in LOYAL_TIERS:
        return "loyal"
    return "new" if purchase_days == 1 else "repeat"
