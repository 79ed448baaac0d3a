"""The category funnel report end to end on SQLite and PostgreSQL: counts and conversion rates
worked out by hand for seven customers over January–March 2026, as of the end of March known on
1 April (before a back-dated move was recorded) and on 15 April (after it).

The scenario (every time 10:00 UTC, the store's zone; recorded when it occurred unless said):

==========  =============================================================================
2026-01-10  A, B potential; C intended; D prospective; E partner; F internal registered
2026-02-05  A → intended (update_profile)
2026-02-20  C → prospective
2026-03-03  B's first opportunity: potential → intended by itself
2026-03-05  C → signed — recorded on 2026-04-10
2026-03-10  D → signed
2026-03-15  B's opportunity won: intended → signed by itself
2026-03-20  G registered, potential
2026-03-25  A → partner (leaves the funnel: no conversion)
==========  =============================================================================
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from crm_es import CRM
from crm_es.reports import Reports
from crm_es.reports.funnel import FunnelReport, table_rows
from tests.helpers.cli import run
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, FunnelReport]]]:
    with module_store(request, tmp_path_factory) as url:
        clock = Clock(at("2026-01-10"))
        with CRM(url, clock=clock) as crm:

            def on(day: str) -> str:
                clock.now = at(day)
                return at(day).isoformat()

            registered = {"A": "potential", "B": "potential", "C": "intended",
                          "D": "prospective", "E": "partner", "F": "internal"}  # fmt: skip
            for ref, category in registered.items():
                crm.register_customer(
                    external_ref=ref, category=category, occurred_at=on("2026-01-10")
                )
            crm.update_profile(customer="A", category="intended", occurred_at=on("2026-02-05"))
            crm.update_profile(customer="C", category="prospective", occurred_at=on("2026-02-20"))
            crm.open_opportunity(customer="B", opportunity_id="OP-1", title="deal", amount="10.00",
                                 currency="CNY", occurred_at=on("2026-03-03"))  # fmt: skip
            crm.update_profile(customer="D", category="signed", occurred_at=on("2026-03-10"))
            crm.win_opportunity(customer="B", opportunity_id="OP-1", occurred_at=on("2026-03-15"))
            crm.register_customer(external_ref="G", occurred_at=on("2026-03-20"))
            crm.update_profile(customer="A", category="partner", occurred_at=on("2026-03-25"))
            clock.now = at("2026-04-05")
            found = {}
            with Reports(crm) as r:
                found["before"] = r.funnel(as_of="2026-03-31", known_at="2026-04-01", months=3)
            # The back-dated move, recorded after the first report's known_at.
            clock.now = at("2026-04-10")
            crm.update_profile(customer="C", category="signed", occurred_at=at("2026-03-05"))
            clock.now = at("2026-05-01")
            with Reports(crm) as r:
                found["known 1 April"] = r.funnel(as_of="2026-03-31", known_at="2026-04-01",
                                                  months=3)  # fmt: skip
                found["known 15 April"] = r.funnel(as_of="2026-03-31", known_at="2026-04-15",
                                                   months=3)  # fmt: skip
        yield url, found


def stages(report: FunnelReport) -> dict[str, int]:
    return {s.stage: s.customers for s in [*report.stages, *report.outside]}


def month(report: FunnelReport, name: str) -> dict[str, tuple[int, int | None, float | None]]:
    (m,) = [m for m in report.by_month if m.month == name]
    return {s.stage: (s.at_start, s.converted, s.conversion_rate) for s in m.stages}


def test_stages_as_of_the_report_count_partners_and_internal_apart(
    store: tuple[str, dict[str, FunnelReport]],
) -> None:
    """A partner, B signed (by its won opportunity), C prospective (its move not yet known),
    D signed, E partner, F internal, G potential."""
    report = store[1]["known 1 April"]
    assert report.customers == 7
    assert [s.stage for s in report.stages] == ["potential", "intended", "prospective", "signed"]
    assert [s.label for s in report.stages] == ["潜在客户", "意向客户", "准客户", "签约客户"]
    assert stages(report) == {"potential": 1, "intended": 0, "prospective": 1, "signed": 2,
                              "partner": 2, "internal": 1}  # fmt: skip


def test_monthly_conversion_by_hand(store: tuple[str, dict[str, FunnelReport]]) -> None:
    report = store[1]["known 1 April"]
    assert [(m.month, m.partial) for m in report.by_month] == [
        ("2026-01", False), ("2026-02", False), ("2026-03", True),
    ]  # fmt: skip
    jan, feb = report.by_month[0], report.by_month[1]
    assert (jan.start, jan.end) == ("2026-01-01T00:00:00.000000Z", "2026-01-31T23:59:59.999999Z")
    assert (feb.start, report.by_month[2].end) == (
        "2026-02-01T00:00:00.000000Z", "2026-03-31T23:59:59.999999Z",
    )  # fmt: skip
    # Nobody was registered on 1 January: no rates, not 0 %.
    assert month(report, "2026-01") == {s: (0, None if s == "signed" else 0, None)
                                        for s in ("potential", "intended", "prospective",
                                                  "signed")}  # fmt: skip
    # Start: A, B potential; C intended; D prospective. End: A, C moved on; B, D did not.
    assert month(report, "2026-02") == {
        "potential": (2, 1, 50.0), "intended": (1, 1, 100.0), "prospective": (1, 0, 0.0),
        "signed": (0, None, None),
    }  # fmt: skip
    # Start: B potential; A intended; C, D prospective. End: B signed (two stages on), A a
    # partner (not a conversion), D signed, C's move not known; G came in during the month.
    assert month(report, "2026-03") == {
        "potential": (1, 1, 100.0), "intended": (1, 0, 0.0), "prospective": (2, 1, 50.0),
        "signed": (0, None, None),
    }  # fmt: skip


def test_a_back_dated_move_shows_only_when_known(
    store: tuple[str, dict[str, FunnelReport]],
) -> None:
    found = store[1]
    assert found["known 1 April"] == found["before"]  # (D, T) never changes
    later = found["known 15 April"]
    assert stages(later)["prospective"] == 0 and stages(later)["signed"] == 3
    assert month(later, "2026-03")["prospective"] == (2, 2, 100.0)
    assert month(later, "2026-02") == month(found["before"], "2026-02")


def test_table_rows_list_stages_then_months(store: tuple[str, dict[str, FunnelReport]]) -> None:
    rows = table_rows(store[1]["known 1 April"])
    assert len(rows) == 4 + 2 + 3 * 4
    assert rows[0] == {"section": "stages", "month": None, "stage": "potential",
                       "label": "潜在客户", "customers": 1, "converted": None,
                       "conversion_rate": None}  # fmt: skip
    assert rows[-2] == {"section": "month", "month": "2026-03", "stage": "prospective",
                        "label": "准客户", "customers": 2, "converted": 1,
                        "conversion_rate": 50.0}  # fmt: skip


def cli(url: str, *args: str) -> tuple[int, str, str]:
    return run(url, "report", "funnel", "--as-of", "2026-03-31", "--known-at", "2026-04-01",
               "--no-refresh", *args)  # fmt: skip


def test_cli_json_csv_and_table(store: tuple[str, dict[str, FunnelReport]]) -> None:
    url = store[0]
    code, out, err = cli(url, "--months", "3", "--format", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert data["customers"] == 7 and data["months"] == 3
    assert [m["month"] for m in data["by_month"]] == ["2026-01", "2026-02", "2026-03"]
    assert data["by_month"][1]["stages"][0]["conversion_rate"] == 50.0
    code, out, err = cli(url, "--months", "2", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 + 2 * 4
    assert rows[-4] == {"section": "month", "month": "2026-03", "stage": "potential",
                        "label": "潜在客户", "customers": "1", "converted": "1",
                        "conversion_rate": "100.0"}  # fmt: skip
    code, out, err = cli(url, "--format", "table")
    assert code == 0, err
    assert "准客户" in out and "conversion_rate" in out and "2025-04" in out
    # 6 + 12 × 4 = 54 rows: a table shows them all, the report's own month (the last) too
    lines = out.splitlines()
    assert len(lines) == 2 + 54 and lines[-1].split()[:3] == ["month", "2026-03", "signed"]
    code, out, err = cli(url, "--format", "table", "--limit", "10")
    assert code == 0, err
    assert "(10 of 54 rows: --limit 0 shows all)" in out


@pytest.mark.parametrize("months", ["0", "121"])
def test_months_out_of_range_is_a_usage_error(
    store: tuple[str, dict[str, FunnelReport]], months: str
) -> None:
    code, out, err = cli(store[0], "--months", months)
    assert code == 2 and out == "" and "--months" in err
