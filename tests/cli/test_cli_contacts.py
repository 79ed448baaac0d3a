"""``crm-es report contacts``: JSON, CSV and a table, its --idle-days, --section and --owner, and
the KPI report's contacts column; figures worked out by hand (store in Asia/Shanghai)."""

from __future__ import annotations

import csv
import io
import json

from tests.helpers.cli import run

LINES = [
    {"type": "register_customer", "external_ref": "C-1", "name": "王芳", "owner": "staff:li",
     "occurred_at": "2026-05-01T10:00:00+08:00"},
    {"type": "register_customer", "external_ref": "C-2", "name": "李雷", "owner": "staff:wang",
     "occurred_at": "2026-05-01T10:00:00+08:00"},
    # 2026-05-02T23:30+08:00 is 05-02 in the store's zone (05-02 15:30 in UTC)
    {"type": "log_contact", "customer": "C-1", "channel": "wechat", "direction": "inbound",
     "occurred_at": "2026-05-02T23:30:00+08:00"},
    {"type": "log_contact", "customer": "C-1", "channel": "phone", "direction": "outbound",
     "staff": "staff:li", "occurred_at": "2026-05-03T09:00:00+08:00"},
    {"type": "record_service", "customer": "C-1", "phase": "in-sale", "kind": "installation",
     "staff": "staff:li", "occurred_at": "2026-05-04T09:00:00+08:00"},
]  # fmt: skip


def _store(url: str) -> None:
    assert run(url, "init", "--timezone", "Asia/Shanghai")[0] == 0
    code, out, err = run(url, "exec", "-", input="\n".join(json.dumps(x) for x in LINES))
    assert code == 0, out + err


def test_report_contacts_gives_response_times_idle_customers_and_staff_counts(
    sqlite_url: str,
) -> None:
    _store(sqlite_url)
    code, out, err = run(sqlite_url, "report", "contacts", "--as-of", "2026-06-01",
                         "--idle-days", "30", "--format", "json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["reference_date"] == "2026-06-01" and report["idle_days"] == 30
    overall = report["response_times"][0]
    assert (overall["answered"], overall["unanswered"], overall["median_hours"]) == (1, 0, 9.5)
    # C-1: last contact 05-03 (29 days: not idle); C-2: never, registered 05-01 (31 days).
    assert [(i["external_ref"], i["days_since"], i["never_contacted"])
            for i in report["idle_customers"]] == [("C-2", 31, True)]  # fmt: skip
    assert report["idle_customers"][0]["idle_since"] == "2026-05-01T10:00:00+08:00"
    assert report["service_phases"] == {"pre-sale": 0, "in-sale": 1, "after-sale": 0}
    assert [(s["staff"], s["contacts"], s["service_records"]) for s in report["staff"]] == [
        ("(none)", 1, 0), ("staff:li", 1, 1),
    ]  # fmt: skip
    assert "王芳" not in out and "李雷" not in out  # names never in JSON


def test_owner_and_section_choose_the_rows_in_csv_and_a_table_names_the_customer(
    sqlite_url: str,
) -> None:
    _store(sqlite_url)
    args = ("report", "contacts", "--as-of", "2026-06-01", "--section", "last_contact")
    code, out, err = run(sqlite_url, *args, "--owner", "staff:wang", "--format", "csv")
    assert code == 0, err
    assert out == ""  # C-2 was never contacted: no last-contact row for staff:wang
    code, out, err = run(sqlite_url, *args, "--owner", "staff:li", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["external_ref"], r["channel"], r["direction"], r["days_since"]) for r in rows] == [
        ("C-1", "phone", "outbound", "29"), ("C-1", "wechat", "inbound", "30"),
    ]  # fmt: skip
    code, out, err = run(sqlite_url, "report", "contacts", "--as-of", "2026-06-01",
                         "--format", "table")  # fmt: skip
    assert code == 0, err
    assert "王芳" in out and "idle_by_owner" in out  # every section, names beside refs
    code, out, err = run(sqlite_url, "report", "contacts", "--section", "nope")
    assert code == 2 and "nope" in err


def test_the_kpi_report_counts_contacts_per_staff_member(sqlite_url: str) -> None:
    _store(sqlite_url)
    code, out, err = run(sqlite_url, "report", "kpi", "--as-of", "2026-06-01", "--format", "csv",
                         "--columns", "owner,contacts")  # fmt: skip
    assert code == 0, err
    contacts = {r["owner"]: r["contacts"] for r in csv.DictReader(io.StringIO(out))}
    assert contacts == {"staff:li": "1", "staff:wang": "0"}
    code, out, err = run(sqlite_url, "report", "kpi", "--as-of", "2026-06-30", "--period",
                         "month", "--format", "json")  # fmt: skip
    assert code == 0, err
    assert {o["owner"]: o["contacts"] for o in json.loads(out)["owners"]} == {
        "staff:li": 0, "staff:wang": 0,
    }  # fmt: skip  # June: no contact logged in the month
