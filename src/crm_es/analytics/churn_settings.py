"""The churn rule's settings, apart from its numpy computation (:mod:`.churn_rule`) so that the
command line can show their defaults without loading numpy."""

from __future__ import annotations

import msgspec


class ChurnRule(msgspec.Struct, frozen=True):
    """Churned after max(k × median inter-purchase interval, floor) days without a purchase;
    at risk after ``at_risk_share`` of that. One-time buyers use the floor (hiatus rule)."""

    k: float = 3.0
    floor_days: int = 270
    at_risk_share: float = 0.5
