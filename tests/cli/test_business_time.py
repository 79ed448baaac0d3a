"""Business time through the public CLI: steps out of order are refused with nothing stored, a
customer exists from its earliest event, and time-driven state (expired points, the rolling tier)
holds as of any date without a command per customer; ``crm-es maintain`` records it once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.cli import lines, run


def commands(*items: dict[str, Any]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def exec_ok(url: str, *items: dict[str, Any]) -> None:
    code, out, err = run(url, "exec", "-", input=commands(*items))
    assert code == 0, err + out


def events_of(url: str, ref: str) -> list[dict[str, Any]]:
    code, out, err = run(url, "history", ref)
    assert code == 0, err
    return lines(out)


def refused(url: str, ref: str, item: dict[str, Any], why: str) -> None:
    """``item`` fails with a clear error naming ``why`` and stores nothing."""
    before = events_of(url, ref)
    code, out, err = run(url, "exec", "-", input=commands(item))
    assert code == 1 and why in err, err + out
    assert events_of(url, ref) == before


def show(url: str, ref: str, *args: str) -> Any:
    code, out, err = run(url, "show", ref, *args)
    assert code == 0, err
    return lines(out)[0]


def report(url: str, name: str, *args: str) -> Any:
    code, out, err = run(url, "report", name, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def register(ref: str, at: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"type": "register_customer", "external_ref": ref, "occurred_at": at}


def purchase(ref: str, order: str, amount: str, at: str) -> dict[str, Any]:
    return {"type": "record_purchase", "customer": ref, "order_id": order, "amount": amount,
            "currency": "CNY", "occurred_at": at}  # fmt: skip


def test_steps_before_what_they_act_on_are_refused_and_store_nothing(store_url: str) -> None:
    exec_ok(
        store_url,
        register("C-1"),
        {"type": "file_complaint", "customer": "C-1", "complaint_id": "K-1", "category": "x",
         "severity": "low", "occurred_at": "2026-06-10T10:00:00Z"},
        purchase("C-1", "O-1", "100", "2026-06-10T10:00:00Z"),
        {"type": "schedule_care_task", "customer": "C-1", "task_id": "T-1", "kind": "return_visit",
         "due_on": "2026-06-20", "occurred_at": "2026-06-10T10:00:00Z"},
    )  # fmt: skip
    early = "2026-06-09T23:59:59Z"
    for step in ("resolve_complaint", "escalate_complaint"):
        extra = {"resolution": "done"} if step == "resolve_complaint" else {"escalated_to": "lead"}
        item = {"type": step, "customer": "C-1", "complaint_id": "K-1", "occurred_at": early}
        refused(store_url, "C-1", item | extra, "before complaint 'K-1' was filed")
    refund = {"type": "refund_purchase", "customer": "C-1", "order_id": "O-1", "occurred_at": early}
    refused(store_url, "C-1", refund, "before order 'O-1' was paid")
    for step in ("complete_care_task", "cancel_care_task"):
        item = {"type": step, "customer": "C-1", "task_id": "T-1", "occurred_at": early}
        refused(store_url, "C-1", item, "before care task 'T-1' was scheduled")
    # the same steps in order are stored, and a follow-up before the resolution is refused
    exec_ok(store_url, {"type": "resolve_complaint", "customer": "C-1", "complaint_id": "K-1",
                        "resolution": "done", "occurred_at": "2026-06-11T10:00:00Z"})  # fmt: skip
    follow_up = {"type": "follow_up_complaint", "customer": "C-1", "complaint_id": "K-1",
                 "satisfied": True, "occurred_at": "2026-06-10T12:00:00Z"}  # fmt: skip
    refused(store_url, "C-1", follow_up, "before complaint 'K-1' was resolved")
    complaints = report(store_url, "satisfaction", "--as-of", "2026-06-30")["complaints"]
    assert complaints["resolution_hours_median"] == 24.0


def test_a_purchase_back_dated_before_a_churn_does_not_win_the_customer_back(
    store_url: str,
) -> None:
    exec_ok(
        store_url,
        register("C-1"),
        purchase("C-1", "O-1", "100", "2026-02-01T10:00:00Z"),
        {"type": "churn_customer", "customer": "C-1", "churn_reason": "moved",
         "occurred_at": "2026-06-01T10:00:00Z"},
        purchase("C-1", "O-2", "100", "2026-05-01T10:00:00Z"),  # keyed in late, from paper
    )  # fmt: skip
    assert show(store_url, "C-1")["churn"]["churned"] is True
    [row] = report(store_url, "churn", "--as-of", "2026-07-01")["customers"]
    assert (row["status"], row["won_back"]) == ("churned", False)
    # a win-back dated before the churn is refused; one after it is stored
    early = {"type": "win_back_customer", "customer": "C-1", "occurred_at": "2026-05-31T00:00:00Z"}
    refused(store_url, "C-1", early, "before the customer's last churn or win-back")
    exec_ok(store_url, purchase("C-1", "O-3", "100", "2026-06-15T10:00:00Z"))
    assert show(store_url, "C-1")["churn"]["churned"] is False


def test_history_loaded_after_a_later_registration_appears_in_past_reports(
    store_url: str,
) -> None:
    exec_ok(
        store_url,
        register("C-1", "2026-03-01T00:00:00Z"),
        register("C-2", "2026-03-01T00:00:00Z"),
        purchase("C-1", "O-1", "100", "1997-01-10T10:00:00Z"),
        purchase("C-1", "O-2", "100", "1997-03-10T10:00:00Z"),
        purchase("C-2", "O-3", "100", "1997-02-10T10:00:00Z"),
    )
    churn = report(store_url, "churn", "--as-of", "1997-09-30")
    assert sorted(c["external_ref"] for c in churn["customers"]) == ["C-1", "C-2"]
    segments = report(store_url, "segments", "--as-of", "1997-02-28")
    assert sorted((c["external_ref"], c["frequency"]) for c in segments["customers"]) == [
        ("C-1", 1),
        ("C-2", 1),
    ]
    assert show(store_url, "C-1", "--as-of", "1997-02-28")["purchases"]["orders"] == 1
    assert report(store_url, "segments", "--as-of", "1996-12-31")["customers"] == []


def test_points_past_their_expiry_neither_count_nor_redeem_without_a_command(
    store_url: str,
) -> None:
    exec_ok(
        store_url,
        register("C-1", "2025-01-01T00:00:00Z"),
        {"type": "grant_points", "customer": "C-1", "points": 500, "expires_on": "2025-12-31",
         "occurred_at": "2025-01-02T00:00:00Z"},
        {"type": "grant_points", "customer": "C-1", "points": 100,
         "occurred_at": "2025-01-02T00:00:00Z"},
    )  # fmt: skip
    assert show(store_url, "C-1", "--as-of", "2025-12-31")["points"]["balance"] == 600
    points = show(store_url, "C-1")["points"]
    assert (points["balance"], points["expired_unrecorded"]) == (100, 500)
    redeem = {"type": "redeem_points", "customer": "C-1", "points": 300, "reward": "mug"}
    refused(store_url, "C-1", redeem, "only 100 available")


def test_the_tier_falls_as_orders_leave_the_twelve_month_window(store_url: str) -> None:
    exec_ok(
        store_url,
        register("C-1", "2024-09-01T00:00:00Z"),
        purchase("C-1", "O-1", "60000", "2024-10-01T10:00:00Z"),
    )
    assert show(store_url, "C-1", "--as-of", "2025-06-30")["tier"] == "platinum"
    now = show(store_url, "C-1")
    assert (now["tier"], now["tier_recorded"]) == ("standard", "platinum")
    tiers = {
        d: report(store_url, "segments", "--as-of", d)["customers"][0]["tier"]
        for d in ("2024-09-30", "2025-06-30", "2025-10-01")
    }
    assert tiers == {"2024-09-30": "standard", "2025-06-30": "platinum", "2025-10-01": "standard"}


def _due_store(url: str) -> None:
    exec_ok(
        url,
        register("C-1", "2024-09-01T00:00:00Z"),
        purchase("C-1", "O-1", "60000", "2024-10-01T10:00:00Z"),
        register("C-2", "2025-01-01T00:00:00Z"),
        {"type": "grant_points", "customer": "C-2", "points": 500, "expires_on": "2025-12-31",
         "occurred_at": "2025-01-02T00:00:00Z"},
        register("C-3", "2025-01-01T00:00:00Z"),
        purchase("C-3", "O-2", "10", "2025-02-01T10:00:00Z"),  # nothing due
    )  # fmt: skip


def _maintain(url: str, *args: str) -> dict[str, Any]:
    code, out, err = run(url, "maintain", *args)
    assert code == 0, err
    return lines(out)[0]


def test_maintain_records_expiries_and_tier_changes_once(store_url: str) -> None:
    _due_store(store_url)
    first = _maintain(store_url, "--at", "2026-01-15")
    assert (first["day"], first["points_expired"], first["tiers_changed"]) == ("2026-01-15", 1, 1)
    assert first["customers_checked"] == 3 and first["errors"] == []
    expired = [e for e in events_of(store_url, "C-2") if e["type"] == "PointsExpired"]
    changed = [e for e in events_of(store_url, "C-1") if e["type"] == "TierChanged"]
    assert [e["occurred_at"] for e in expired] == ["2026-01-15T00:00:00Z"]
    assert [e["summary"] for e in changed] == [
        "tier standard → platinum",
        "tier platinum → standard",
    ]
    assert (
        expired[0]["command_id"] == f"maintain:2026-01-15:{expired[0]['customer_id']}:expire_points"
    )
    counts = (len(events_of(store_url, "C-1")), len(events_of(store_url, "C-2")))
    again = _maintain(store_url, "--at", "2026-01-15")
    later = _maintain(store_url)
    for run_ in (again, later):
        assert (run_["points_expired"], run_["tiers_changed"]) == (0, 0)
    assert (len(events_of(store_url, "C-1")), len(events_of(store_url, "C-2"))) == counts
    assert show(store_url, "C-1")["tier_recorded"] == "standard"
    assert show(store_url, "C-2")["points"]["expired_unrecorded"] == 0


def test_maintain_on_two_processes_at_once_stores_each_change_once(
    store_url: str, tmp_path: Path
) -> None:
    _due_store(store_url)
    crm_es = [sys.executable, "-m", "crm_es.cli", "--db", store_url, "maintain", "--at",
              "2026-01-15"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    both = [subprocess.Popen(crm_es, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for _ in range(2)]  # fmt: skip
    for process in both:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    kinds = [e["type"] for ref in ("C-1", "C-2") for e in events_of(store_url, ref)]
    assert kinds.count("PointsExpired") == 1
    assert kinds.count("TierChanged") == 2  # up at the purchase, down once


def test_maintain_refuses_a_day_after_today_or_before_1900(store_url: str) -> None:
    _due_store(store_url)
    for day, why in (("2999-01-01", "after today"), ("1899-12-31", "outside 1900-01-01"),
                     ("yesterday", "not an ISO date")):  # fmt: skip
        code, out, err = run(store_url, "maintain", "--at", day)
        assert code == 1 and err.startswith("Error:") and why in err, err
        assert out == ""
