"""``crm-es report retention`` through the public command line: the grid for people, JSON and CSV
for programs, filters that change what is counted, the churn rule's options, and mistakes."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.helpers.cli import lines, run


def commands(*items: dict[str, Any]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def buy(customer: str, order: str, when: str) -> dict[str, Any]:
    return {"type": "record_purchase", "customer": customer, "order_id": order, "amount": "10",
            "currency": "CNY", "occurred_at": f"{when}+08:00"}  # fmt: skip


HISTORY = commands(
    {"type": "register_customer", "external_ref": "C-1", "owner": "staff:li", "region": "华东",
     "occurred_at": "2026-03-10T10:00:00+08:00"},
    {"type": "register_customer", "external_ref": "C-2", "owner": "staff:wang",
     "occurred_at": "2026-03-10T10:00:00+08:00"},
    {"type": "register_customer", "external_ref": "C-3", "owner": "staff:li",
     "occurred_at": "2026-03-10T10:00:00+08:00"},
    # 00:30 on 1 April in Shanghai: 31 March in UTC, April in this store.
    buy("C-1", "O-1", "2026-04-01T00:30:00"),
    buy("C-1", "O-2", "2026-05-20T12:00:00"),
    buy("C-2", "O-3", "2026-04-10T12:00:00"),
    buy("C-2", "O-4", "2026-04-11T12:00:00"),
    buy("C-3", "O-5", "2026-05-02T12:00:00"),
)  # fmt: skip
AS_OF = ("--as-of", "2026-06-15")


@pytest.fixture
def url(store_url: str) -> str:
    code, out, err = run(store_url, "init", "--timezone", "Asia/Shanghai")
    assert code == 0, err
    code, out, err = run(store_url, "exec", "-", input=HISTORY)
    assert code == 0, err
    assert all(line["ok"] for line in lines(out))
    return store_url


def report(url: str, *args: str) -> Any:
    code, out, err = run(url, "report", "retention", *AS_OF, *args)
    assert code == 0, err
    return out


def test_json_has_the_cohorts_and_the_months(url: str) -> None:
    data = json.loads(report(url, "--format", "json"))
    assert data["reference_date"] == "2026-06-15"
    assert (data["customers"], data["buyers"]) == (3, 3)
    cohorts = {c["cohort"]: c for c in data["cohorts"]}
    assert {k: c["customers"] for k, c in cohorts.items()} == {"2026-04": 2, "2026-05": 1}
    april = cohorts["2026-04"]["periods"]
    assert [p["retained"] for p in april] == [2, 1, 0]  # C-1 back in May
    assert [p["retention_rate"] for p in april] == [100.0, 50.0, 0.0]
    # C-2's second day is in April; C-1's in May.
    assert [p["repeat_rate"] for p in april] == [50.0, 100.0, 100.0]
    assert [m["month"] for m in data["months"]] == ["2026-04", "2026-05", "2026-06"]
    assert data["months"][-1]["partial"] is True
    # Default rule (floor 270 days): everyone is active by 15 June.
    assert data["months"][-1]["active"] == 3


def test_the_churn_rule_options_change_the_statuses(url: str) -> None:
    data = json.loads(report(url, "--format", "json", "--k", "1", "--floor-days", "30"))
    assert data["rule"] == {"k": 1.0, "floor_days": 30, "at_risk_share": 0.5}
    june = data["months"][-1]
    # 15 June: C-2 silent 65 days (churned), C-1 26 (at risk), C-3 44 (churned).
    assert (june["active"], june["at_risk"], june["churned"]) == (0, 1, 2)


def test_filters_change_what_is_counted_in_every_format(url: str) -> None:
    data = json.loads(report(url, "--format", "json", "--owner", "staff:li"))
    assert (data["owner"], data["customers"]) == ("staff:li", 2)
    assert [(c["cohort"], c["customers"]) for c in data["cohorts"]] == [
        ("2026-04", 1), ("2026-05", 1),
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(report(url, "--format", "csv", "--region", "华东"))))
    assert [(r["cohort"], r["period"], r["retained"]) for r in rows] == [
        ("2026-04", "0", "1"), ("2026-04", "1", "1"), ("2026-04", "2", "0"),
    ]  # fmt: skip


def test_csv_has_one_row_per_cohort_and_period(url: str) -> None:
    rows = list(csv.DictReader(io.StringIO(report(url, "--format", "csv"))))
    assert list(rows[0]) == [
        "cohort", "customers", "period", "month", "partial", "retained", "retention_rate",
        "repeat_customers", "repeat_rate", "active", "at_risk", "churned",
    ]  # fmt: skip
    assert [(r["cohort"], r["period"]) for r in rows] == [
        ("2026-04", "0"), ("2026-04", "1"), ("2026-04", "2"), ("2026-05", "0"), ("2026-05", "1"),
    ]  # fmt: skip


def test_the_table_is_a_cohort_by_month_grid_with_the_statuses_below(url: str) -> None:
    text = report(url, "--format", "table")
    assert "as of 2026-06-15; 3 customers with a purchase." in text
    grid = [line.split() for line in text.splitlines() if line.startswith("2026-0")]
    # Retention rates, whole percents: April cohort 100, 50, 0; May cohort 100, 0.
    assert grid[:2] == [["2026-04", "2", "100", "50", "0"], ["2026-05", "1", "100", "0"]]
    assert "Churn-rule status at the end of each month (2026-06: on 2026-06-15):" in text
    assert ["2026-06", "2026-06-15", "True", "3", "0", "3", "0", "0"] in grid
    repeat = report(url, "--format", "table", "--measure", "repeat_rate")
    assert "repeat_rate: % of the cohort with a second purchase day" in repeat
    assert ["2026-04", "2", "50", "100", "100"] in [line.split() for line in repeat.splitlines()]
    narrow = report(url, "--format", "table", "--columns", "cohort,m1")
    assert ["2026-04", "50"] in [line.split() for line in narrow.splitlines()]


def test_a_store_without_purchases_says_so(store_url: str) -> None:
    run(store_url, "init")
    code, out, err = run(store_url, "report", "retention", "--format", "table")
    assert code == 0, err
    assert "(no purchases yet: no cohorts)" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--segment", "Nonsense"], 1, "Error: segment: not a segment, class, lifecycle stage"),
        (["--measure", "nps"], 2, "Invalid value for '--measure'"),
        (["--columns", "m9"], 1, "Error: --columns: no column m9"),
    ],
)
def test_mistakes_are_errors_without_a_traceback(
    url: str, args: list[str], code: int, message: str
) -> None:
    exit_code, _, err = run(url, "report", "retention", *AS_OF, "--format", "table", *args)
    assert exit_code == code
    assert message in err and "Traceback" not in err
