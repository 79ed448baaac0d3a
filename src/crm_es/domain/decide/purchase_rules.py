"""The rules a purchase is decided by, as plain functions of the state before it: the one
definition that :func:`crm_es.domain.decide.decisions._record_purchase` (a single command) and
the bulk path's columnar purchase decision (:mod:`crm_es.app.bulk.purchase_columns`) both call.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime

from crm_es.domain.customer import ROLLING_TIER_WINDOW, Customer
from crm_es.domain.values import TIER_CURRENCY, Tier, tier_for_spend


def wins_back(cu: Customer, at: datetime) -> bool:
    """Whether a purchase at business time ``at`` wins the churned customer ``cu`` back (one
    back-dated before the churn wins nobody back)."""
    return cu.churned and cu.churned_at is not None and at > cu.churned_at


def tier_spend_delta(minor: int, currency: str) -> int:
    """What an amount adds to the spend the tier follows (other currencies add nothing)."""
    return minor if currency == TIER_CURRENCY else 0


def tier_review(cu: Customer, at: datetime, delta: int) -> tuple[Tier, int] | None:
    """(the new tier, the rolling 12-month net spend it follows) when a purchase or refund at
    ``at`` that changes the spend by ``delta`` changes ``cu``'s tier; None when it does not.

    Tier follows rolling 12-month net spend as of the command's business time, recorded only
    forward: a command dated before the latest purchase, refund or tier change records none
    (what the tier was then is the reports' to compute; today's, ``maintain``'s)."""
    if cu.tier_since is not None and at < cu.tier_since:
        return None
    lifetime = cu.paid.get(TIER_CURRENCY, 0) - cu.refunded.get(TIER_CURRENCY, 0) + delta
    if cu.tier is Tier.STANDARD and tier_for_spend(lifetime) is Tier.STANDARD:
        return None  # the 12-month window holds no more than the lifetime spend: no change
    first, last = cu.first_purchase_at, cu.last_purchase_at
    if (first is None and not cu.orders) or (
        first is not None and last is not None and first > at - ROLLING_TIER_WINDOW and last <= at
    ):
        spend = lifetime  # every order is in the window (or there is none): no walk needed
    else:
        spend = cu.rolling_spend(at) + delta
    tier = tier_for_spend(spend)
    return None if tier == cu.tier else (tier, spend)
