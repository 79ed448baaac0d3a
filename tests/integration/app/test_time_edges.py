"""Time edges a red team found: the nightly job against same-day and past-day facts, back-dated
purchases and redemptions, attributes and churn changed out of business order, imports and
birthday changes after a report's knowledge time, and days where the clocks go back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from crm_es import CRM
from crm_es.app.maintenance import maintain
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.domain import events as ev
from crm_es.domain.errors import CrmError, InsufficientPoints
from crm_es.domain.times import moment
from crm_es.reports.api import Reports
from tests.helpers.clock import Clock

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def tier_changes(crm: CRM, ref: str) -> list[str]:
    return [f"{e.from_tier}>{e.to_tier}" for e in crm.history(ref) if isinstance(e, ev.TierChanged)]


def test_maintain_later_the_same_day_keeps_an_upgrade_of_that_day(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", occurred_at=at("2026-01-01T00:00:00+00:00"))
        crm.record_purchase(customer="A", order_id="O1", amount="25000", currency="CNY")
        assert maintain(crm).tiers_changed == 0
        assert tier_changes(crm, "A") == ["standard>gold"]
        assert crm.view("A")["tier_recorded"] == crm.view("A")["tier"] == "gold"


def test_maintain_for_a_past_day_invents_nothing(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", occurred_at=at("2026-01-01T00:00:00+00:00"))
        crm.record_purchase(customer="A", order_id="O1", amount="25000", currency="CNY",
                            occurred_at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
        before = len(list(crm.history("A")))
        report = maintain(crm, "2000-01-01")
        assert (report.tiers_changed, report.points_expired) == (0, 0)
        assert len(list(crm.history("A"))) == before
        with Reports(crm) as reports:
            assert reports.segments("2000-01-01").customers == []


def test_a_back_dated_purchase_records_no_false_downgrade(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", occurred_at=at("2020-01-01T00:00:00+00:00"))
        crm.record_purchase(customer="A", order_id="O1", amount="25000", currency="CNY",
                            occurred_at=at("2026-05-01T00:00:00+00:00"))  # fmt: skip
        crm.record_purchase(customer="A", order_id="O2", amount="10", currency="CNY",
                            occurred_at=at("2024-01-01T00:00:00+00:00"))  # fmt: skip
        assert tier_changes(crm, "A") == ["standard>gold"]
        assert crm.view("A")["tier_recorded"] == "gold"


def test_a_redemption_cannot_draw_on_points_granted_after_it(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="Q", occurred_at=at("2026-01-01T00:00:00+00:00"))
        crm.grant_points(customer="Q", points=100, occurred_at=at("2026-03-01T00:00:00+00:00"))
        with pytest.raises(InsufficientPoints):
            crm.redeem_points(customer="Q", points=60, occurred_at=at("2026-02-01T00:00:00+00:00"))
        assert crm.view("Q", as_of="2026-02-15")["points"]["balance"] == 0
        assert crm.view("Q")["points"]["balance"] == 100


def test_show_and_the_reports_agree_on_attributes_changed_out_of_order(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", owner="alice", region="east",
                              occurred_at=at("2026-03-01T00:00:00+00:00"))  # fmt: skip
        crm.assign_owner(customer="A", owner="carol", occurred_at=at("2026-02-01T00:00:00+00:00"))
        crm.update_profile(customer="A", region="north",
                           occurred_at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
        shown = crm.view("A", as_of="2026-06-30")
        with Reports(crm) as reports:
            [row] = reports.segments("2026-06-30").customers
            [early] = reports.segments("2026-02-15").customers
        earlier = crm.view("A", as_of="2026-02-15")
    assert (
        (shown["owner"], shown["profile"]["region"]) == (row.owner, row.region) == ("alice", "east")
    )
    assert (earlier["owner"], earlier["profile"]["region"]) == (early.owner, early.region)
    assert (early.owner, early.region) == ("carol", "north")


def test_a_churn_dated_before_the_last_win_back_is_refused(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", occurred_at=at("2025-12-01T00:00:00+00:00"))
        crm.churn_customer(
            customer="A", churn_reason="x", occurred_at=at("2026-04-01T00:00:00+00:00")
        )
        crm.win_back_customer(customer="A", occurred_at=at("2026-05-01T00:00:00+00:00"))
        with pytest.raises(CrmError, match="before the customer's last churn or win-back"):
            crm.churn_customer(customer="A", churn_reason="y",
                               occurred_at=at("2026-01-01T00:00:00+00:00"))  # fmt: skip


def test_a_customer_won_back_without_buying_is_in_the_churn_report(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="X", occurred_at=at("2026-01-01T00:00:00+00:00"))
        crm.churn_customer(
            customer="X", churn_reason="x", occurred_at=at("2026-02-01T00:00:00+00:00")
        )
        crm.win_back_customer(customer="X", occurred_at=at("2026-03-01T00:00:00+00:00"))
        with Reports(crm) as reports:
            seg, churn = reports.segments("2026-03-31"), reports.churn("2026-03-31")
    assert [c.lifecycle for c in seg.customers] == ["won_back"]
    assert [(c.won_back, c.won_back_on) for c in churn.customers] == [(True, "2026-03-01")]
    assert churn.won_back == seg.lifecycle_sizes["won_back"] == 1


def test_an_audit_import_leaves_a_past_report_as_it_was(store_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    with CRM(source) as crm:
        crm.register_customer(
            external_ref="E", owner="alice", occurred_at=at("2026-01-01T00:00:00+00:00")
        )
        crm.record_purchase(customer="E", order_id="O1", amount="70000", currency="CNY",
                            occurred_at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
        path = tmp_path / "e.jsonl"
        with path.open("wb") as f:
            export_history(crm, f.write)
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="Z", occurred_at=at("2026-01-01T00:00:00+00:00"))
        known = datetime.now(UTC)
        with Reports(crm) as reports:
            before = msgspec.json.encode(reports.kpi("2026-06-30", known))
        import_history(crm, path)
        with Reports(crm) as reports:
            assert msgspec.json.encode(reports.kpi("2026-06-30", known)) == before
            assert any(o.owner == "alice" for o in reports.kpi("2026-06-30").owners)


def test_a_birthday_changed_after_t_leaves_the_agenda_of_t(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", birthday="1990-06-25",
                              occurred_at=at("2026-01-01T00:00:00+00:00"))  # fmt: skip
        crm.register_customer(external_ref="B", occurred_at=at("2026-01-01T00:00:00+00:00"))
        known = NOW
        with Reports(crm) as reports:
            before = reports.agenda("2026-06-20", known, days_ahead=14)
        # the clock moves on: the changes are recorded after T
        later = CRM(store_url, clock=Clock(NOW + timedelta(hours=1)))
        try:
            later.update_profile(
                customer="A", birthday="1990-12-01", occurred_at=at("2026-05-01T00:00:00+00:00")
            )
            later.update_profile(
                customer="B", birthday="1990-06-22", occurred_at=at("2026-05-01T00:00:00+00:00")
            )
        finally:
            later.close()
        with Reports(crm) as reports:
            again = reports.agenda("2026-06-20", known, days_ahead=14)
            now = reports.agenda("2026-06-20", days_ahead=14)
    assert [b.external_ref for b in before.birthdays] == ["A"]
    assert msgspec.json.encode(again) == msgspec.json.encode(before)
    assert [b.external_ref for b in now.birthdays] == ["B"]


@pytest.mark.parametrize(
    ("zone", "day", "inside"),
    [("America/Santiago", "2026-04-04", "2026-04-04T23:30:00-04:00"),
     ("Africa/Cairo", "2026-10-29", "2026-10-29T23:30:00+02:00"),
     ("Asia/Shanghai", "2026-10-31", "2026-10-31T23:59:59.999999+08:00")],
)  # fmt: skip
def test_a_bare_date_ends_at_the_last_instant_of_that_day(zone: str, day: str, inside: str) -> None:
    from zoneinfo import ZoneInfo

    end = moment("as_of", day, tz=ZoneInfo(zone))
    assert end is not None and at(inside) <= end
    assert (end + timedelta(microseconds=1)).astimezone(ZoneInfo(zone)).date().isoformat() > day


def test_a_process_opened_before_the_zone_was_set_uses_it(store_url: str) -> None:
    with CRM(store_url) as early, CRM(store_url) as setter:
        setter.store.set_timezone("Asia/Shanghai")
        early.register_customer(external_ref="A", occurred_at=at("2026-01-31T20:00:00+00:00"))
        with Reports(early) as reports:
            [row] = reports.segments("2026-02-28").customers
        assert early.store.timezone_name == "Asia/Shanghai"
    assert row.external_ref == "A"


def test_a_compact_date_is_a_day_too() -> None:
    assert moment("as_of", "20260101") == moment("as_of", "2026-01-01")


def test_a_complaint_step_before_its_previous_step_is_refused(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        crm.register_customer(external_ref="A", occurred_at=at("2026-03-01T00:00:00+00:00"))
        crm.file_complaint(customer="A", complaint_id="K", category="x", severity="low",
                           occurred_at=at("2026-03-06T00:00:00+00:00"))  # fmt: skip
        crm.resolve_complaint(customer="A", complaint_id="K", resolution="ok",
                              occurred_at=at("2026-03-08T00:00:00+00:00"))  # fmt: skip
        crm.reopen_complaint(customer="A", complaint_id="K",
                             occurred_at=at("2026-03-09T00:00:00+00:00"))  # fmt: skip
        with pytest.raises(CrmError, match="before the last step of complaint 'K'"):
            crm.resolve_complaint(customer="A", complaint_id="K", resolution="ok",
                                  occurred_at=at("2026-03-07T00:00:00+00:00"))  # fmt: skip


def test_the_csv_import_takes_today_and_refuses_a_blank_required_time(
    store_url: str, tmp_path: Path
) -> None:
    from crm_es.app.importer import import_csv

    today = datetime.now(UTC).date().isoformat()
    csv = tmp_path / "p.csv"
    csv.write_text(
        "customer_ref,occurred_at,amount,currency,order_id\n"
        f"C-1,{today},10,CNY,O-1\nC-1,,10,CNY,O-2\n",
        encoding="utf-8",
    )
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", occurred_at=at("2026-01-01T00:00:00+00:00"))
        report = import_csv(crm, csv, "purchases")
    assert (report.stored, report.rejected) == (1, 1)
    assert report.errors[0].line == 3 and "occurred_at" in report.errors[0].error
