"""The store's time zone, through the public CLI: hand-computed vectors around midnight and month
ends in +08:00, side by side with the same history on a UTC store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.cli import lines, run

SHANGHAI = "Asia/Shanghai"


def commands(*items: dict[str, Any]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


HISTORY = commands(
    {"type": "register_customer", "external_ref": "C-1", "birthday": "1990-11-01",
     "occurred_at": "2026-10-01T10:00:00+08:00"},
    # 09:00 on the 31st and 07:00 on the 1st in Shanghai: 01:00 and 23:00 on the 31st in UTC
    {"type": "record_purchase", "customer": "C-1", "order_id": "O-1", "amount": "10",
     "currency": "CNY", "occurred_at": "2026-10-31T09:00:00+08:00"},
    {"type": "record_purchase", "customer": "C-1", "order_id": "O-2", "amount": "10",
     "currency": "CNY", "occurred_at": "2026-11-01T07:00:00+08:00"},
    # 05:00 on 1 November in Shanghai, still October in UTC
    {"type": "answer_survey", "customer": "C-1", "survey_id": "S-1", "metric": "nps", "score": 9,
     "occurred_at": "2026-11-01T05:00:00+08:00"},
    {"type": "file_complaint", "customer": "C-1", "complaint_id": "K-1", "category": "delivery",
     "severity": "high", "occurred_at": "2026-11-02T10:00:00+08:00"},
)  # fmt: skip


def store_with_history(url: str, timezone: str | None) -> None:
    code, out, err = run(url, "init", *(["--timezone", timezone] if timezone else []))
    assert code == 0, err
    assert lines(out)[0]["timezone"] == (timezone or "UTC")
    code, _, err = run(url, "exec", "-", input=HISTORY)
    assert code == 0, err


def report(url: str, name: str, *args: str) -> Any:
    code, out, err = run(url, "report", name, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(params=[SHANGHAI, None], ids=["shanghai", "utc"])
def zoned(request: pytest.FixtureRequest, store_url: str) -> tuple[str, bool]:
    store_with_history(store_url, request.param)
    return store_url, request.param == SHANGHAI


def test_purchase_days_are_cut_in_the_store_time_zone(zoned: tuple[str, bool]) -> None:
    url, shanghai = zoned
    [c1] = report(url, "segments", "--as-of", "2026-11-30")["customers"]
    assert c1["frequency"] == (2 if shanghai else 1)  # two days in Shanghai, one in UTC


def test_survey_months_are_cut_in_the_store_time_zone(zoned: tuple[str, bool]) -> None:
    url, shanghai = zoned
    months = report(url, "satisfaction", "--as-of", "2026-11-30")["by_month"]
    assert [m["key"] for m in months] == (["2026-11"] if shanghai else ["2026-10"])


def test_a_bare_date_is_the_end_of_that_day_in_the_store_time_zone(zoned: tuple[str, bool]) -> None:
    url, shanghai = zoned
    code, out, err = run(url, "show", "C-1", "--as-of", "2026-10-31")
    assert code == 0, err
    # O-2 happened at 23:00 UTC on the 31st: after the 31st in Shanghai, on it in UTC
    assert lines(out)[0]["purchases"]["orders"] == (1 if shanghai else 2)


def test_sla_times_are_shown_in_the_store_time_zone(zoned: tuple[str, bool]) -> None:
    url, shanghai = zoned
    [past] = report(url, "agenda", "--as-of", "2026-11-05")["complaints_past_sla"]
    # filed 02:00 UTC on the 2nd, due 24 hours later
    assert past["sla_due"] == (
        "2026-11-03T10:00:00+08:00" if shanghai else "2026-11-03T02:00:00+00:00"
    )


def test_birthdays_are_due_today_in_the_store_time_zone(zoned: tuple[str, bool]) -> None:
    url, shanghai = zoned
    # 01:30 on 1 November in Shanghai, still 31 October in UTC
    agenda = report(url, "agenda", "--as-of", "2026-10-31T17:30:00Z", "--days-ahead", "0")
    assert agenda["reference_date"] == ("2026-11-01" if shanghai else "2026-10-31")
    assert [b["days_until"] for b in agenda["birthdays"]] == ([0] if shanghai else [])


def test_the_time_zone_is_kept_and_cannot_change_once_events_are_stored(
    zoned: tuple[str, bool],
) -> None:
    url, shanghai = zoned
    code, out, _ = run(url, "init")
    assert code == 0 and lines(out)[0]["timezone"] == (SHANGHAI if shanghai else "UTC")
    code, _, err = run(url, "init", "--timezone", "Europe/Paris")
    assert code == 1 and "cannot change once events are stored" in err


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus", "", "../../etc/passwd", "UTC+8", "\x00", "Asia", "localtime", "posixrules"],
)
def test_an_unknown_time_zone_is_a_clear_error_and_keeps_nothing(store_url: str, name: str) -> None:
    code, _, err = run(store_url, "init", "--timezone", name)
    assert code == 1 and err.startswith("Error:") and "time zone" in err
    code, out, _ = run(store_url, "init")
    assert lines(out)[0]["timezone"] == "UTC"
