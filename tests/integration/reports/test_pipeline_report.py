"""The pipeline report end to end on SQLite and PostgreSQL: figures computed by hand for five
opportunities of three customers, as of the end of March known on 1 April (before a back-dated
win was recorded), known on 15 April (after it), and as of mid-February.

The scenario (every time 10:00 UTC; recorded when it occurred unless said otherwise):

====================  ==========================================================================
2026-01-01            C-1 (staff:li), C-2 (staff:wang), C-3 (no owner) registered
2026-01-05            OP-1 of C-1 opened: 100000.00 CNY at lead (10 %), owner staff:li
2026-01-10            OP-2 of C-1 opened: 50000.00 CNY at proposal (50 %)
2026-01-12            OP-3 of C-2 opened: 20000.00 CNY at lead, owner staff:wang
2026-01-15            OP-4 of C-2 opened: 1000.00 USD at qualified (25 %) for staff:li
2026-02-01            OP-1 → qualified (25 %)
2026-02-10            OP-3 lost: price (29 days)
2026-03-01            OP-1 → negotiation (75 %)
2026-03-05            OP-2 won (54 days)
2026-03-10            OP-5 of C-3 opened: 333.33 CNY at lead (10 %), no owner
2026-03-20            OP-4 lost: competitor (64 days)
2026-03-25            OP-1 won (79 days) — recorded on 2026-04-10
====================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from crm_es import CRM
from crm_es.domain.pipeline import Pipeline, Stage
from crm_es.reports import Reports
from crm_es.reports.pipeline import PipelineReport, table_rows
from crm_es.store.pipeline_setting import pipeline_setting
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def reports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, PipelineReport]]:
    with module_store(request, tmp_path_factory) as url:
        clock = Clock(at("2026-01-01"))
        with CRM(url, clock=clock) as crm:

            def on(day: str, recorded: str | None = None) -> str:
                clock.now = at(recorded or day)
                return at(day).isoformat()

            for ref, owner in [("C-1", "staff:li"), ("C-2", "staff:wang"), ("C-3", None)]:
                crm.register_customer(external_ref=ref, owner=owner, occurred_at=on("2026-01-01"))

            def open_(customer: str, oid: str, amount: str, day: str, **more: str) -> None:
                currency = more.pop("currency", "CNY")
                crm.open_opportunity(
                    customer=customer, opportunity_id=oid, title=f"deal {oid}", amount=amount,
                    currency=currency, occurred_at=on(day), **more,
                )  # fmt: skip

            open_("C-1", "OP-1", "100000.00", "2026-01-05")
            open_("C-1", "OP-2", "50000.00", "2026-01-10", stage="proposal")
            open_("C-2", "OP-3", "20000.00", "2026-01-12")
            open_("C-2", "OP-4", "1000.00", "2026-01-15", currency="USD", stage="qualified",
                  owner="staff:li")  # fmt: skip
            crm.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="qualified",
                                    occurred_at=on("2026-02-01"))  # fmt: skip
            crm.lose_opportunity(customer="C-2", opportunity_id="OP-3", lost_reason="price",
                                 occurred_at=on("2026-02-10"))  # fmt: skip
            crm.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="negotiation",
                                    occurred_at=on("2026-03-01"))  # fmt: skip
            crm.win_opportunity(customer="C-1", opportunity_id="OP-2", occurred_at=on("2026-03-05"))
            open_("C-3", "OP-5", "333.33", "2026-03-10")
            crm.lose_opportunity(customer="C-2", opportunity_id="OP-4", lost_reason="competitor",
                                 note="换了供应商", occurred_at=on("2026-03-20"))  # fmt: skip
            crm.win_opportunity(customer="C-1", opportunity_id="OP-1",
                                occurred_at=on("2026-03-25", recorded="2026-04-10"))  # fmt: skip
            clock.now = at("2026-05-01")
            with Reports(crm) as r:
                found = {
                    "known 1 April": r.pipeline(as_of="2026-03-31", known_at="2026-04-01"),
                    "known 15 April": r.pipeline(as_of="2026-03-31", known_at="2026-04-15"),
                    "mid-February": r.pipeline(as_of="2026-02-15"),
                }
                # A later change of the pipeline's probabilities and labels (recorded now, on
                # the wall clock): a report known before it stays as it was; one known after
                # it keeps the stamped probabilities' forecast and shows the new labels.
                pipeline_setting(crm.store.settings).replace(
                    Pipeline(stages=[Stage("lead", "Lead", 90), Stage("qualified", "Q", 90),
                                     Stage("proposal", "P", 90), Stage("negotiation", "N", 90)])
                )  # fmt: skip
                found["known 1 April, asked again"] = r.pipeline(
                    as_of="2026-03-31", known_at="2026-04-01"
                )
                found["relabelled"] = r.pipeline(as_of="2026-03-31")
        yield found


def test_open_amounts_and_the_weighted_forecast_as_known_before_the_back_dated_win(
    reports: dict[str, PipelineReport],
) -> None:
    """Open: OP-1 (100000.00 at 75 %) and OP-5 (333.33 at 10 %); weighted 75000.00 + 33.333,
    rounded once: 75033.33."""
    report = reports["known 1 April"]
    assert (report.as_of, report.known_at) == (
        "2026-03-31T23:59:59.999999Z",
        "2026-04-01T23:59:59.999999Z",
    )
    assert report.currencies == ["CNY", "USD"] and report.opened == 5
    o = report.overall
    assert (o.open, o.open_amount, o.weighted_amount) == (
        2, {"CNY": "100333.33", "USD": "0.00"}, {"CNY": "75033.33", "USD": "0.00"},
    )  # fmt: skip
    assert (o.won, o.lost, o.won_amount) == (1, 2, {"CNY": "50000.00", "USD": "0.00"})
    assert o.win_rate == 33.33  # 1 of 3 closed
    assert o.cycle_days_mean == 49.0  # (54 + 29 + 64) / 3
    assert (report.won_cycle_days_mean, report.lost_cycle_days_mean) == (54.0, 46.5)


def test_stages_count_open_opportunities_and_convert_as_far_as_they_got(
    reports: dict[str, PipelineReport],
) -> None:
    """Furthest stage reached: OP-1 negotiation, OP-2 won (opened at proposal, so it passed
    lead and qualified), OP-3 lead, OP-4 qualified, OP-5 lead: reached 5, 3, 2, 2 and won 1."""
    rows = [
        (s.stage, s.label, s.probability, s.open, s.open_amount["CNY"], s.weighted_amount["CNY"],
         s.reached, s.next_stage, s.conversion)
        for s in reports["known 1 April"].by_stage
    ]  # fmt: skip
    assert rows == [
        ("lead", "线索", 10, 1, "333.33", "33.33", 5, "qualified", 60.0),
        ("qualified", "需求确认", 25, 0, "0.00", "0.00", 3, "proposal", 66.67),
        ("proposal", "方案报价", 50, 0, "0.00", "0.00", 2, "negotiation", 100.0),
        ("negotiation", "谈判", 75, 1, "100000.00", "75000.00", 2, "won", 50.0),
    ]


def test_owners_are_the_opportunities_own(reports: dict[str, PipelineReport]) -> None:
    """OP-4 is staff:li's though its customer is staff:wang's; OP-5 has no owner."""
    rows = [
        (o.owner, o.open, o.open_amount, o.weighted_amount, o.won, o.lost, o.win_rate,
         o.cycle_days_mean)
        for o in reports["known 1 April"].by_owner
    ]  # fmt: skip
    assert rows == [
        ("(unassigned)", 1, {"CNY": "333.33", "USD": "0.00"}, {"CNY": "33.33", "USD": "0.00"},
         0, 0, None, None),
        ("staff:li", 1, {"CNY": "100000.00", "USD": "0.00"}, {"CNY": "75000.00", "USD": "0.00"},
         1, 1, 50.0, 59.0),
        ("staff:wang", 0, {"CNY": "0.00", "USD": "0.00"}, {"CNY": "0.00", "USD": "0.00"},
         0, 1, 0.0, 29.0),
    ]  # fmt: skip


def test_lost_reasons_with_share_and_amount_per_currency(
    reports: dict[str, PipelineReport],
) -> None:
    rows = [
        (r.lost_reason, r.lost, r.share, r.lost_amount)
        for r in reports["known 1 April"].lost_reasons
    ]
    assert rows == [
        ("competitor", 1, 50.0, {"CNY": "0.00", "USD": "1000.00"}),
        ("price", 1, 50.0, {"CNY": "20000.00", "USD": "0.00"}),
    ]


def test_the_back_dated_win_counts_once_it_was_known(reports: dict[str, PipelineReport]) -> None:
    """Recorded on 10 April for 25 March: as of 31 March known on 15 April, OP-1 is won."""
    o = reports["known 15 April"].overall
    assert (o.open, o.open_amount["CNY"], o.weighted_amount["CNY"]) == (1, "333.33", "33.33")
    assert (o.won, o.lost, o.win_rate, o.won_amount["CNY"]) == (2, 2, 50.0, "150000.00")
    assert o.cycle_days_mean == 56.5  # (79 + 54 + 29 + 64) / 4
    assert reports["known 15 April"].won_cycle_days_mean == 66.5
    assert [s.conversion for s in reports["known 15 April"].by_stage] == [60.0, 66.67, 100.0, 100.0]


def test_as_of_mid_february_the_pipeline_is_what_it_was_then(
    reports: dict[str, PipelineReport],
) -> None:
    """OP-1 at qualified, OP-2 at proposal (won later), OP-4 at qualified in USD; OP-3 lost."""
    report = reports["mid-February"]
    o = report.overall
    assert report.opened == 4
    assert (o.open, o.open_amount, o.weighted_amount) == (
        3, {"CNY": "150000.00", "USD": "1000.00"}, {"CNY": "50000.00", "USD": "250.00"},
    )  # fmt: skip
    assert (o.won, o.lost, o.win_rate, o.cycle_days_mean) == (0, 1, 0.0, 29.0)
    assert [(s.stage, s.open, s.open_amount, s.reached, s.conversion) for s in report.by_stage] == [
        ("lead", 0, {"CNY": "0.00", "USD": "0.00"}, 4, 75.0),
        ("qualified", 2, {"CNY": "100000.00", "USD": "1000.00"}, 3, 33.33),
        ("proposal", 1, {"CNY": "50000.00", "USD": "0.00"}, 1, 0.0),
        ("negotiation", 0, {"CNY": "0.00", "USD": "0.00"}, 0, None),
    ]


def test_a_later_pipeline_change_leaves_a_report_known_before_it_as_it_was(
    reports: dict[str, PipelineReport],
) -> None:
    assert reports["known 1 April, asked again"] == reports["known 1 April"]
    assert [s.label for s in reports["known 1 April"].by_stage][:2] == ["线索", "需求确认"]


def test_a_report_known_after_a_pipeline_change_keeps_the_forecast_and_shows_the_new_labels(
    reports: dict[str, PipelineReport],
) -> None:
    before, after = reports["known 15 April"], reports["relabelled"]
    assert after.overall == before.overall and after.by_owner == before.by_owner
    assert [(s.label, s.probability, s.weighted_amount) for s in after.by_stage] == [
        ("Lead", 90, {"CNY": "33.33", "USD": "0.00"}), ("Q", 90, {"CNY": "0.00", "USD": "0.00"}),
        ("P", 90, {"CNY": "0.00", "USD": "0.00"}), ("N", 90, {"CNY": "0.00", "USD": "0.00"}),
    ]  # fmt: skip


def test_table_rows_have_every_column_and_one_row_per_dimension_key(
    reports: dict[str, PipelineReport],
) -> None:
    rows = table_rows(reports["known 1 April"])
    assert [(r["dimension"], r["key"]) for r in rows] == [
        ("overall", "all"), ("stage", "lead"), ("stage", "qualified"), ("stage", "proposal"),
        ("stage", "negotiation"), ("owner", "(unassigned)"), ("owner", "staff:li"),
        ("owner", "staff:wang"), ("lost_reason", "competitor"), ("lost_reason", "price"),
    ]  # fmt: skip
    assert all(list(r) == list(rows[0]) for r in rows)
    assert (rows[0]["open_amount_CNY"], rows[0]["weighted_CNY"], rows[0]["win_rate"]) == (
        "100333.33", "75033.33", 33.33,
    )  # fmt: skip
    assert (rows[8]["lost"], rows[8]["share"], rows[8]["lost_amount_USD"]) == (1, 50.0, "1000.00")


def test_an_empty_store_has_an_empty_pipeline(sqlite_url: str) -> None:
    with CRM(sqlite_url) as crm, Reports(crm) as r:
        report = r.pipeline(as_of="2026-03-31")
    assert (report.opened, report.currencies, report.overall.open, report.overall.win_rate) == (
        0, [], 0, None,
    )  # fmt: skip
    assert next((s.stage, s.reached, s.conversion) for s in report.by_stage) == ("lead", 0, None)
    assert report.by_owner == [] and report.lost_reasons == []
