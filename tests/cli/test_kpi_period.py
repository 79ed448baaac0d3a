"""``report kpi --period``: flows counted in the calendar period holding the as-of day, in the
store's time zone; stocks as of that day. Hand-computed vectors in Asia/Shanghai."""

from __future__ import annotations

import json

from tests.helpers.cli import run

LINES = [
    {"type": "register_customer", "external_ref": "C-1", "owner": "staff:li",
     "occurred_at": "2026-09-01T10:00:00+08:00"},
    # October (in +08:00): 300.00, refunded 50.00 in November
    {"type": "record_purchase", "customer": "C-1", "order_id": "O-1", "amount": "300.00",
     "currency": "CNY", "occurred_at": "2026-10-10T10:00:00+08:00"},
    # 2026-11-01T07:00+08:00 is still October in UTC: November in the store's zone
    {"type": "record_purchase", "customer": "C-1", "order_id": "O-2", "amount": "120.00",
     "currency": "CNY", "occurred_at": "2026-11-01T07:00:00+08:00"},
    {"type": "refund_purchase", "customer": "C-1", "order_id": "O-1", "amount": "50.00",
     "occurred_at": "2026-11-20T10:00:00+08:00"},
    {"type": "answer_survey", "customer": "C-1", "survey_id": "S-1", "metric": "csat",
     "score": 5, "occurred_at": "2026-10-31T23:30:00+08:00"},
    {"type": "answer_survey", "customer": "C-1", "survey_id": "S-2", "metric": "csat",
     "score": 2, "occurred_at": "2026-11-02T09:00:00+08:00"},
]  # fmt: skip


def _kpi(url: str, *args: str) -> dict[str, object]:
    code, out, err = run(url, "report", "kpi", "--as-of", "2026-11-30", *args, "--format", "json")
    assert code == 0, err
    owners = json.loads(out)["owners"]
    row: dict[str, object] = next(o for o in owners if o["owner"] == "staff:li")
    return row


def test_a_month_counts_what_occurred_in_it_in_the_store_zone(sqlite_url: str) -> None:
    assert run(sqlite_url, "init", "--timezone", "Asia/Shanghai")[0] == 0
    script = "\n".join(json.dumps(line) for line in LINES)
    code, out, err = run(sqlite_url, "exec", "-", input=script)
    assert code == 0, out + err
    every = _kpi(sqlite_url)
    assert every["revenue"] == {"CNY": "370.00"} and every["responses"] == 2
    month = _kpi(sqlite_url, "--period", "month")
    # 120.00 bought in November minus the 50.00 refunded in November
    assert month["revenue"] == {"CNY": "70.00"}
    assert month["responses"] == 1 and month["csat"] == 0.0
    assert month["customers"] == 1  # a stock: as of the day
    quarter = _kpi(sqlite_url, "--period", "quarter")
    assert quarter["revenue"] == {"CNY": "370.00"} and quarter["responses"] == 2
    code, out, _ = run(sqlite_url, "report", "kpi", "--as-of", "2026-11-30", "--period",
                       "month", "--format", "json")  # fmt: skip
    assert json.loads(out)["period_start"] == "2026-11-01"
    assert run(sqlite_url, "report", "kpi", "--period", "week")[0] == 2
