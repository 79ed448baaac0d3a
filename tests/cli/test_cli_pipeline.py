"""``crm-es report pipeline`` and ``crm-es settings pipeline`` on both stores: opportunities
sent through ``exec``, the report as a table, JSON and CSV, and the pipeline shown, replaced
and reset by an admin with clear errors for a bad file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

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


def test_settings_pipeline_shows_replaces_and_resets_the_stages(
    store_url: str, tmp_path: Path
) -> None:
    run(store_url, "init")
    code, out, err = run(store_url, "settings", "pipeline")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["default"] is True
    assert [s["key"] for s in shown["pipeline"]["stages"]] == [
        "lead", "qualified", "proposal", "negotiation",
    ]  # fmt: skip
    custom = {"stages": [{"key": "visit", "label": "拜访", "probability": 5},
                         {"key": "contract", "label": "合同", "probability": 90}]}  # fmt: skip
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(custom, ensure_ascii=False), encoding="utf-8")
    code, out, err = run(store_url, "settings", "pipeline", "--set", str(path))
    assert code == 0, err
    assert json.loads(out)["pipeline"]["stages"][1] == {
        "key": "contract",
        "label": "合同",
        "probability": 90,
    }
    line = {"type": "open_opportunity", "customer": "C-1", "opportunity_id": "OP-9", "title": "x",
            "amount": "1", "currency": "CNY", "stage": "lead"}  # fmt: skip
    run(store_url, "exec", "-", input=json.dumps(LINES[0]))
    code, out, _ = run(store_url, "exec", "-", input=json.dumps(line))
    assert code == 1 and "one of: visit, contract" in json.loads(out)["error"]
    code, out, err = run(store_url, "settings", "pipeline", "--set", "-",
                         input='{"stages": [{"key": "x", "label": "X", "probability": 7}], "won": 1}')  # fmt: skip
    assert code == 1 and "unknown field `won`" in err
    code, out, err = run(store_url, "settings", "pipeline", "--reset")
    assert code == 0 and json.loads(out)["default"] is True
    code, out, err = run(store_url, "settings", "pipeline", "--reset", "--set", str(path))
    assert code == 2 and "not both" in err
