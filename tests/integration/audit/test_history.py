"""History with readable summaries, and the customer as of a business date / a knowledge time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_es import CRM
from crm_es.audit.history import SUMMARIES, filtered_history, summarize
from crm_es.domain import events as ev
from crm_es.domain.errors import CustomerNotFound, CustomerNotYetKnown, InvalidValue
from tests.helpers.clock import Clock

JAN_1 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_a_back_dated_import_counts_as_of_its_business_date_but_not_before_it_was_recorded(
    store_url: str,
) -> None:
    clock = Clock(JAN_1)
    with CRM(store_url, clock=clock) as crm:
        crm.register_customer(external_ref="C-1", name="王芳")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="10.00", currency="CNY")
        clock.now = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)  # the import runs in February …
        crm.record_purchase(  # … and back-dates a January order
            customer="C-1",
            order_id="O-2",
            amount="129.90",
            currency="CNY",
            occurred_at=datetime(2026, 1, 20, 12, 0, tzinfo=UTC),
            on_behalf_of="system:import",
        )

        def orders(**cut: object) -> list[str]:
            return sorted(crm.get_customer_as_of("C-1", **cut).orders)  # type: ignore[arg-type]

        assert orders(as_of="2026-01-31") == ["O-1", "O-2"]  # the world as of D
        assert orders(known_at="2026-01-31") == ["O-1"]  # what we knew on D
        assert orders(as_of="2026-01-31", known_at="2026-01-31") == ["O-1"]
        assert orders(as_of="2026-01-19") == ["O-1"]  # a bare date is the end of that day
        assert orders(as_of="2026-01-20") == ["O-1", "O-2"]
        assert orders(known_at="2026-02-10T08:00:00+00:00") == ["O-1", "O-2"]
        assert orders(known_at="2026-02-10T15:59:59+08:00") == ["O-1"]  # an offset is an instant
        assert orders(as_of="2026-01-31", version=2) == ["O-1"]
        at_d = crm.get_customer_as_of("C-1", as_of=datetime(2026, 1, 31, tzinfo=UTC))
        assert at_d.paid == {"CNY": 13990} and at_d.name == "王芳"
        assert crm.get_customer_as_of("C-1") == crm.get_customer("C-1")


def test_a_customer_asked_about_before_it_existed_is_not_found_with_a_clear_message(
    store_url: str,
) -> None:
    with CRM(store_url, clock=Clock(JAN_1)) as crm:
        crm.register_customer(external_ref="C-1")
        with pytest.raises(CustomerNotYetKnown, match="'C-1' did not exist yet as of 2025-12-31"):
            crm.get_customer_as_of("C-1", as_of="2025-12-31")
        with pytest.raises(CustomerNotYetKnown, match="did not exist yet known at 2025-12-31"):
            crm.get_customer_as_of("C-1", known_at="2025-12-31")
        with pytest.raises(CustomerNotFound, match="customer 'C-9' not found"):
            crm.get_customer_as_of("C-9", as_of="2026-01-01")
        with pytest.raises(InvalidValue, match="as_of: not an ISO date or date-time"):
            crm.get_customer_as_of("C-1", as_of="last tuesday")


def test_history_filters_on_recorded_time_and_event_type(store_url: str) -> None:
    clock = Clock(JAN_1)
    with CRM(store_url, clock=clock) as crm:
        crm.register_customer(external_ref="C-1", category="signed")  # a purchase moves nothing
        for day in range(1, 4):
            clock.now = JAN_1 + timedelta(days=day)
            crm.record_purchase(customer="C-1", order_id=f"O-{day}", amount="1", currency="CNY")
            crm.grant_points(customer="C-1", points=day)

        def versions(**filters: object) -> list[int]:
            found = filtered_history(crm, "C-1", **filters)  # type: ignore[arg-type]
            return [e.originator_version for e in found]

        assert versions() == list(range(1, 8))
        assert versions(since="2026-01-03") == [4, 5, 6, 7]  # a bare --since: start of the day
        assert versions(until="2026-01-02") == [1, 2, 3]  # a bare --until: end of the day
        assert versions(types=["PurchaseRecorded"]) == [2, 4, 6]
        assert versions(types=["PointsGranted", "CustomerRegistered"], since="2026-01-03") == [5, 7]
        with pytest.raises(InvalidValue, match=r"unknown event type .*known: .*PurchaseRecorded"):
            versions(types=["Purchase"])


def test_every_event_type_has_a_one_line_summary(store_url: str) -> None:
    assert set(SUMMARIES) == set(ev.EVENT_TYPES.values())
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name="王芳", region="华东")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="129.90", currency="CNY")
        crm.file_complaint(customer="C-1", complaint_id="K-1", category="delivery", severity="high")
        crm.resolve_complaint(customer="C-1", complaint_id="K-1", resolution="refunded")
        crm.grant_points(customer="C-1", points=100, reason="purchase")
        crm.redeem_points(customer="C-1", points=50, reward="coupon")
        crm.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=5)
        lines = [summarize(e) for e in crm.history("C-1")]
    assert lines == [
        "registered C-1 王芳 (individual, potential, 华东)",
        "purchase O-1 129.90 CNY",
        "profile updated: category=signed",  # a first purchase makes a potential customer signed
        "complaint K-1 filed (high, delivery)",
        "complaint K-1 resolved: refunded",
        "granted 100 points (purchase)",
        "redeemed 50 points (coupon)",
        "survey S-1 csat 5 (scale 1–5)",
    ]
