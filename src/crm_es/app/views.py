"""The JSON-ready view of a customer for ``crm-es show``.

Money is rendered as decimal strings with the currency's exact decimals, times as ISO 8601 in the
store's time zone (the same instants, with their offset), and
personal fields of an erased customer as ``[erased]``. Time-driven state is shown as of the
view's time whether or not an event has caught up with it: the tier by the rolling 12-month
rule, the points balance without lots past their expiry (``tier_recorded`` and
``expired_unrecorded`` say what the stream itself holds until ``crm-es maintain`` runs).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import msgspec

from crm_es.domain.customer import Customer
from crm_es.domain.values import ERASED, format_minor

PERSONAL_FIELDS = ("name", "email", "phone", "birthday")


def _money_map(amounts: dict[str, int]) -> dict[str, str]:
    return {cur: format_minor(minor, cur) for cur, minor in sorted(amounts.items())}


def customer_view(c: Customer, at: datetime, tz: tzinfo) -> dict[str, Any]:
    """The state of one customer as of ``at`` as one JSON-ready object; ``tz`` is the store's
    time zone (the day points expire on)."""
    day = at.astimezone(tz).date()

    def local(moment: datetime | None) -> str | None:
        """An instant as read in the store's time zone (the same instant, with its offset)."""
        return moment.astimezone(tz).isoformat() if moment is not None else None

    live = c.live_lots(day)
    personal = {f: (ERASED if c.erased else getattr(c, f)) for f in PERSONAL_FIELDS}
    net = {cur: paid - c.refunded.get(cur, 0) for cur, paid in c.paid.items()}
    return {
        "customer_id": str(c.id),
        "external_ref": c.external_ref,
        "version": c.version,
        "registered_at": local(c.registered_at),
        "profile": {
            "kind": c.kind,
            "category": c.category,
            "region": c.region,
            "industry": c.industry,
            "company_size": c.company_size,
            "income_band": c.income_band,
            "source_channel": c.source_channel,
            **personal,
        },
        "owner": c.owner,
        "tags": c.tags,
        "consent": {"marketing": c.marketing_consent, "lawful_basis": c.lawful_basis},
        "purchases": {
            "orders": len(c.orders),
            "paid": _money_map(c.paid),
            "refunded": _money_map(c.refunded),
            "net": _money_map(net),
            "first_purchase_at": local(c.first_purchase_at),
            "last_purchase_at": local(c.last_purchase_at),
        },
        "contacts": c.contacts,
        "services": c.services,
        "open_complaints": [
            {
                "complaint_id": cid,
                "category": k.category,
                "severity": k.severity,
                "status": k.status,
                "filed_at": local(k.filed_at),
                "sla_due": local(k.sla_due),
                "reopen_count": k.reopen_count,
            }
            for cid, k in sorted(c.open_complaints().items())
        ],
        "points": {
            "balance": sum(lot.remaining for lot in live),
            "expired_unrecorded": c.points_balance - sum(lot.remaining for lot in live),
            "lots": [
                msgspec.to_builtins(
                    msgspec.structs.replace(lot, granted_at=lot.granted_at.astimezone(tz))
                    if lot.granted_at is not None
                    else lot
                )
                for lot in live
            ],
        },
        "tier": c.tier_at(at),
        "tier_recorded": c.tier,
        "open_care_tasks": [
            {"task_id": tid, "kind": t.kind, "due_on": t.due_on.isoformat(), "staff": t.staff}
            for tid, t in sorted(c.open_care_tasks().items())
        ],
        "open_opportunities": [
            {
                "opportunity_id": oid,
                "stage": o.stage,
                "amount": format_minor(o.amount, o.currency),
                "currency": o.currency,
                "owner": o.owner,
                "opened_at": local(o.opened_at),
            }
            for oid, o in sorted(c.opportunities.items())
            if o.is_open
        ],
        "churn": {
            "churned": c.churned,
            "churned_at": local(c.churned_at),
            "reason": c.churn_reason,
            "won_back_count": c.won_back_count,
        },
        "erased": c.erased,
        # A duplicate closed by a merge names its survivor; a survivor, whom it absorbed.
        "merged_into": str(c.merged_into) if c.merged_into is not None else None,
        "absorbed": [str(d) for d in c.absorbed],
    }
