"""``crm-es report pipeline`` on both stores: opportunities sent through ``exec``, the report
as a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

from tests.helpers.cli import run

DAY = "T10:00:00+00:00"
LINES = [
    {"type": "register_customer", "external_ref": "C-1", "owner": "staff:li",
     "occurred_at": f"2026-01-01{DAY}"},
    {"type": "open_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "title": "ERP",
     "amount": "1000.00", "currency": "CNY", "occurred_at": f"2026-01-02{DAY}"},
    {"type": "open_opportunity", "customer": "C-1", "opportunity_id": "OP-2", "title": "POS",
     "amount": "200.00", "currency": "CNY", "stage": "negotiation",
     "occurred_at": f"2026-01-03{DAY}"},
    {"type": "lose_opportunity", "customer": "C-1", "opportunity_id": "OP-2",
     "lost_reason": "price", "occurred_at": f"2026-01-13{DAY}"},
]  # fmt: skip


def sent(store_url: str) -> None:
    code, _out, err = run(store_url, "exec", "-", input="\n".join(json.dumps(x) for x in LINES))
    assert code == 0, err


def test_the_report_lists_overall_stages_owners_and_lost_reasons(store_url: str) -> None:
    sent(store_url)
    code, out, err = run(
        store_url, "report", "pipeline", "--as-of", "2026-01-31", "--format", "json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["overall"]["open"] == 1 and report["overall"]["weighted_amount"] == {
        "CNY": "100.00"
    }
    assert report["overall"]["win_rate"] == 0.0 and report["overall"]["cycle_days_mean"] == 10.0
    code, out, err = run(
        store_url, "report", "pipeline", "--as-of", "2026-01-31", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["dimension"], r["key"]) for r in rows] == [
        ("overall", "all"), ("stage", "lead"), ("stage", "qualified"), ("stage", "proposal"),
        ("stage", "negotiation"), ("owner", "staff:li"), ("lost_reason", "price"),
    ]  # fmt: skip
    assert (rows[1]["open_amount_CNY"], rows[1]["conversion"]) == ("1000.00", "50.0")
    code, out, err = run(
        store_url, "report", "pipeline", "--as-of", "2026-01-02", "--format", "table",
        "--columns", "dimension,key,open,weighted_CNY",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0].split() == ["dimension", "key", "open", "weighted_CNY"]
    lead = next(line.split() for line in out.splitlines() if " lead " in line)
    assert lead == ["stage", "lead", "1", "100.00"]  # as of 2 January: OP-1 alone, at lead
    code, out, err = run(
        store_url, "report", "pipeline", "--format", "json", "--owner", "staff:wang"
    )
    assert json.loads(out)["by_owner"] == []
