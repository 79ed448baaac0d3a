"""``crm-es report value``: the same report as JSON, CSV and a table with its fits and deciles;
the selection options choose rows, never the totals; bad horizons and rates are usage errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crm_es import CRM
from crm_es.cli.render import display_width
from tests.helpers.cli import run
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store
from tests.helpers.value_population import add_simulated_buyers, at

AS_OF = "2026-06-30"
BUYERS = 30


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """30 simulated buyers, one of them owned by staff:li and one churned explicitly."""
    with module_store(request, tmp_path_factory) as url:
        with CRM(url, clock=Clock(datetime(2026, 7, 1, tzinfo=UTC))) as crm:
            add_simulated_buyers(crm, BUYERS, seed=23, until=AS_OF)
            crm.assign_owner(customer="S-3", owner="staff:li", occurred_at=at("2026-01-01"))
            crm.churn_customer(customer="S-4", churn_reason="moved away", occurred_at=at(AS_OF))
        yield url


def value(url: str, *args: str) -> tuple[int, str, str]:
    return run(url, "report", "value", "--as-of", AS_OF, *args)


def test_json_holds_the_fits_the_deciles_and_every_buyer(store: str) -> None:
    code, out, err = value(store, "--format", "json", "--horizon", "180", "--discount-rate", "0.05")
    assert code == 0, err
    report = json.loads(out)
    assert (report["horizon_days"], report["discount_rate"], report["currency"]) == (
        180,
        0.05,
        "CNY",
    )
    assert report["bgnbd"]["converged"] and report["gamma_gamma"]["converged"]
    assert set(report["spend_check"]) == {"pearson_r", "p_value", "customers"}
    assert report["buyers"] == len(report["customers"]) == BUYERS
    assert len(report["deciles"]) == 10
    total = sum(Decimal(d["clv_total"]) for d in report["deciles"])
    assert total == Decimal(report["total_clv"])
    gone = next(c for c in report["customers"] if c["external_ref"] == "S-4")
    assert gone["explicit"] and gone["clv"] == "0.00"


def test_csv_has_a_row_per_buyer_with_the_columns_of_json(store: str) -> None:
    code, out, _ = value(store, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    as_json = json.loads(value(store, "--format", "json")[1])["customers"]
    assert len(rows) == BUYERS and list(rows[0]) == list(as_json[0])
    assert [r["clv"] for r in rows] == [c["clv"] for c in as_json]


def test_selection_chooses_rows_and_leaves_totals_and_deciles_whole(store: str) -> None:
    everyone = json.loads(value(store, "--format", "json")[1])
    code, out, _ = value(store, "--format", "json", "--sort", "-clv", "--limit", "3")
    top = json.loads(out)
    assert code == 0 and len(top["customers"]) == 3
    clvs = sorted((Decimal(c["clv"]) for c in everyone["customers"]), reverse=True)
    assert [Decimal(c["clv"]) for c in top["customers"]] == clvs[:3]
    assert top["deciles"] == everyone["deciles"] and top["total_clv"] == everyone["total_clv"]
    owned = json.loads(value(store, "--format", "json", "--owner", "staff:li")[1])
    assert [c["external_ref"] for c in owned["customers"]] == ["S-3"]
    churned = json.loads(value(store, "--format", "json", "--segment", "churned")[1])
    assert "S-4" in {c["external_ref"] for c in churned["customers"]}
    assert {c["status"] for c in churned["customers"]} == {"churned"}


def test_a_table_shows_top_customers_then_the_fits_and_deciles_in_120_columns(
    store: str,
) -> None:
    code, out, _ = value(store, "--format", "table", "--limit", "5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["external_ref", "name", "owner", "clv"]
    assert "(5 of 30 rows: --limit 0 shows all)" in out
    for needed in (
        "BG/NBD (week):",
        "Gamma-Gamma (CNY):",
        "Spend vs frequency: Pearson r",
        "Buyers paying in another currency (no CLV): 0",
        "CLV over 365 days at 10.0%",
    ):
        assert needed in out, needed  # fmt: skip
    header = next(i for i, line in enumerate(lines) if line.startswith("decile"))
    assert [line.split()[0] for line in lines[header + 2 : header + 12]] == [
        str(d) for d in range(1, 11)
    ]
    assert all(display_width(line) <= 120 for line in lines)


def test_the_table_is_sorted_by_clv_by_default(store: str) -> None:
    out = value(store, "--format", "table", "--columns", "external_ref,clv", "--limit", "0")[1]
    rows = [line.split() for line in out.splitlines()[2:] if line.startswith("S-")]
    clvs = [Decimal(r[1]) for r in rows]
    assert len(clvs) == BUYERS and clvs == sorted(clvs, reverse=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon", "0"], "Invalid value for '--horizon'"),
        (["--discount-rate", "1.5"], "Invalid value for '--discount-rate'"),
        (["--discount-rate", "nan"], "Invalid value for '--discount-rate'"),
        (["--time-unit", "month"], "Invalid value for '--time-unit'"),
        (["--sort", "nope"], "not a column of this report"),
    ],
)
def test_mistakes_are_errors_without_a_traceback(store: str, args: list[str], message: str) -> None:
    code, out, err = value(store, *args)
    assert code in (1, 2) and message in err
    assert "Traceback" not in out + err
