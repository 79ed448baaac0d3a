"""``crm-es report``: the churn rule is configuration, not code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from crm_es import CRM
from crm_es.cli import main


def test_the_churn_rule_k_floor_and_at_risk_share_come_from_options(store_url: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with CRM(store_url) as crm:
        for i in range(12):
            ref = f"C-{i}"
            crm.register_customer(external_ref=ref, occurred_at=start)
            for k in range(3):
                crm.record_purchase(
                    customer=ref,
                    order_id=f"O-{k}",
                    amount="10",
                    currency="CNY",
                    occurred_at=start + timedelta(days=10 * k + i),
                )
    args = ["--db", store_url, "report", "churn", "--as-of", "2026-05-01", "--format", "json"]

    def statuses(*extra: str) -> dict[str, int]:
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        return {
            s: sum(c["status"] == s for c in report["customers"])
            for s in ("active", "at_risk", "churned")
        }

    assert statuses() == {"active": 12, "at_risk": 0, "churned": 0}  # ~100 days < 270-day floor
    assert statuses("--floor-days", "60", "--k", "2")["churned"] == 12
    assert statuses("--floor-days", "150", "--at-risk-share", "0.5")["at_risk"] == 12
