"""Which care tasks each rule makes due for one customer, by hand: given events, when the
scheduler looks on a day, then these tasks (ids, due days) or none."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crm_es.app.care_rules import CareRules, parse_rules
from crm_es.app.care_scheduler import (
    DueTask,
    cancel_command_id,
    due_care_tasks,
    greetings_without_consent,
    schedule_command_id,
)
from crm_es.domain.customer import Customer
from tests.helpers.domain import CID, REF, command, evolve, given, when

DAY = date(2026, 6, 1)  # the maintenance day; NOW of tests.helpers.domain is noon on it
START = datetime(2026, 6, 1, tzinfo=UTC)
REGISTERED = "2026-01-01T08:00:00+00:00"
RULES = parse_rules(
    """
version = 1
catch_up_days = 30
[birthday_greeting]
days_ahead = 7
[holiday_greeting]
days_ahead = 10
holidays = [{ date = 2026-06-10, name = "端午节" }, { date = 2026-06-19, name = "夏至" }]
[first_purchase_visit]
days_after = 7
[large_purchase_visit]
days_after = 3
min_amount = "5000.00"
[complaint_visit]
days_after = 2
[check_in]
days_silent = 90
[win_back]
high_value = "top_monetary_quintile"
days_to_act = 3
"""
)


def only(*names: str) -> CareRules:
    """RULES with every rule but ``names`` switched off."""
    off = {n: None for n in RULES.enabled() if n not in names}
    return CareRules(**{**{f: getattr(RULES, f) for f in RULES.__struct_fields__}, **off})


def customer(*steps: tuple[str, dict[str, Any]], **registration: Any) -> Customer:
    registration.setdefault("occurred_at", REGISTERED)
    first = command("register_customer", external_ref=REF, owner="staff:li", **registration)
    return given(first, *(command(name, **fields) for name, fields in steps))


def due(c: Customer, rules: CareRules, day: date = DAY, **kw: Any) -> list[tuple[str, str, str]]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    tasks: list[DueTask] = due_care_tasks(c, rules, day, start, UTC, **kw)
    return [(t.task_id, t.kind.value, t.due_on.isoformat()) for t in tasks]


def consent(marketing: bool, at: str = "2026-01-02T00:00:00+00:00") -> tuple[str, dict[str, Any]]:
    return ("change_consent", {"marketing": marketing, "occurred_at": at})


def purchase(order: str, amount: str, at: str, currency: str = "CNY") -> tuple[str, dict[str, Any]]:
    fields = {"order_id": order, "amount": amount, "currency": currency, "occurred_at": at}
    return ("record_purchase", fields)


def test_a_birthday_greeting_is_due_on_the_birthday_within_the_days_ahead_with_consent() -> None:
    rules = only("birthday_greeting")
    within = customer(consent(True), birthday="1990-06-08")
    assert due(within, rules) == [("care:birthday_greeting:2026-06-08", "birthday_greeting",
                                   "2026-06-08")]  # fmt: skip
    assert due(customer(consent(True), birthday="1990-06-09"), rules) == []  # 8 days ahead
    assert due(customer(birthday="1990-06-08"), rules) == []  # consent never given
    assert due(customer(consent(False), birthday="1990-06-08"), rules) == []
    # Consent given later than the start of the day counts from tomorrow's run.
    today = consent(True, "2026-06-01T09:00:00+00:00")
    assert due(customer(today, birthday="1990-06-08"), rules) == []


def test_a_29_february_birthday_is_greeted_on_the_28th_in_other_years() -> None:
    c = customer(consent(True), birthday="2000-02-29")
    assert due(c, only("birthday_greeting"), date(2027, 2, 25)) == [
        ("care:birthday_greeting:2027-02-28", "birthday_greeting", "2027-02-28")
    ]


def test_holiday_greetings_are_due_on_each_holiday_within_the_days_ahead_with_consent() -> None:
    rules = only("holiday_greeting")
    assert due(customer(consent(True)), rules) == [
        ("care:holiday_greeting:2026-06-10", "holiday_greeting", "2026-06-10")
    ]  # 06-19 is 18 days ahead
    assert due(customer(consent(True)), rules, date(2026, 6, 11)) == [
        ("care:holiday_greeting:2026-06-19", "holiday_greeting", "2026-06-19")
    ]  # 06-10 has passed
    assert due(customer(), rules) == []


def test_a_return_visit_follows_the_first_purchase_within_the_catch_up_window() -> None:
    rules = only("first_purchase_visit")
    bought = customer(purchase("O1", "10.00", "2026-05-28T10:00:00+00:00"),
                      purchase("O2", "10.00", "2026-05-30T10:00:00+00:00"))  # fmt: skip
    assert due(bought, rules) == [("care:first_purchase_visit:2026-05-28", "return_visit",
                                   "2026-06-04")]  # fmt: skip
    # Due date passed already (a late run): due today, not in the past.
    late = customer(purchase("O1", "10.00", "2026-05-20T10:00:00+00:00"))
    assert due(late, rules) == [("care:first_purchase_visit:2026-05-20", "return_visit",
                                 "2026-06-01")]  # fmt: skip
    old = customer(purchase("O1", "10.00", "2026-04-01T10:00:00+00:00"))  # 61 days: history
    assert due(old, rules) == []
    assert due(customer(), rules) == []


def test_a_purchase_after_the_start_of_the_day_waits_for_tomorrows_run() -> None:
    c = customer(purchase("O1", "10.00", "2026-06-01T10:00:00+00:00"))
    assert due(c, only("first_purchase_visit")) == []
    assert due(c, only("first_purchase_visit"), date(2026, 6, 2)) == [
        ("care:first_purchase_visit:2026-06-01", "return_visit", "2026-06-08")
    ]


def test_a_large_purchase_gets_a_return_visit_per_day_but_not_on_the_first_purchase() -> None:
    c = customer(
        purchase("O1", "9000.00", "2026-05-10T10:00:00+00:00"),  # first: its own visit
        purchase("O2", "4999.99", "2026-05-20T10:00:00+00:00"),  # below the amount
        purchase("O3", "5000.00", "2026-05-25T10:00:00+00:00"),
        purchase("O4", "6000.00", "2026-05-25T15:00:00+00:00"),  # same day: one visit
        purchase("O5", "9000.00", "2026-05-26T10:00:00+00:00", currency="USD"),  # other currency
    )
    assert due(c, only("large_purchase_visit", "first_purchase_visit")) == [
        ("care:first_purchase_visit:2026-05-10", "return_visit", "2026-06-01"),
        ("care:large_purchase_visit:2026-05-25", "return_visit", "2026-06-01"),
    ]
    # Without the first-purchase rule the first purchase is a large purchase like any other.
    assert [t[0] for t in due(c, only("large_purchase_visit"))] == [
        "care:large_purchase_visit:2026-05-10", "care:large_purchase_visit:2026-05-25",
    ]  # fmt: skip


def test_a_resolved_complaint_gets_a_return_visit_an_open_one_none() -> None:
    filed = ("file_complaint", {"complaint_id": "K1", "category": "delivery", "severity": "high",
                                "occurred_at": "2026-05-29T08:00:00+00:00"})  # fmt: skip
    resolved = ("resolve_complaint", {"complaint_id": "K1", "resolution": "refunded",
                                      "occurred_at": "2026-05-30T08:00:00+00:00"})  # fmt: skip
    rules = only("complaint_visit")
    assert due(customer(filed), rules) == []
    assert due(customer(filed, resolved), rules) == [
        ("care:complaint_visit:2026-05-30", "return_visit", "2026-06-01")
    ]


def test_a_check_in_is_due_after_the_days_silent_since_the_last_touch() -> None:
    rules = only("check_in")
    # Registered 2026-01-01, never contacted: silent for 90 days on 2026-04-01.
    assert due(customer(), rules) == [("care:check_in:2026-04-01", "check_in", "2026-06-01")]
    contact = ("log_contact", {"channel": "phone", "direction": "outbound",
                               "occurred_at": "2026-03-10T08:00:00+00:00"})  # fmt: skip
    assert due(customer(contact), rules) == []  # silent for 83 days
    assert due(customer(contact), rules, date(2026, 6, 8)) == [
        ("care:check_in:2026-06-08", "check_in", "2026-06-08")
    ]
    assert due(customer(purchase("O1", "1.00", "2026-05-01T08:00:00+00:00")), rules) == []
    churned = ("churn_customer", {"churn_reason": "moved away",
                                  "occurred_at": "2026-02-01T00:00:00+00:00"})  # fmt: skip
    assert due(customer(churned), rules) == []


def test_a_win_back_task_needs_the_population_to_say_at_risk() -> None:
    rules = only("win_back")
    assert due(customer(), rules) == []
    assert due(customer(), rules, at_risk_since=date(2026, 5, 20)) == [
        ("care:win_back:2026-05-20", "check_in", "2026-06-04")
    ]


def test_a_task_the_customer_holds_in_any_state_is_not_due_again() -> None:
    rules = only("check_in")
    c = customer()
    schedule = command("schedule_care_task", task_id="care:check_in:2026-04-01", kind="check_in",
                       due_on="2026-06-01", occurred_at="2026-06-01T00:00:00+00:00")  # fmt: skip
    held = evolve(c, when(c, schedule))
    assert due(held, rules) == []
    done = evolve(
        held, when(held, command("complete_care_task", task_id="care:check_in:2026-04-01"))
    )
    assert due(done, rules) == []


def test_nothing_is_due_for_an_erased_customer_or_one_registered_after_the_start() -> None:
    erased = customer(consent(True), ("erase_personal_data", {"requested_by": "customer"}),
                      birthday="1990-06-08")  # fmt: skip
    assert due(erased, RULES) == []
    later = customer(birthday="1990-06-08", occurred_at="2026-06-01T09:00:00+00:00")
    assert due(later, RULES) == []


def test_open_greetings_of_a_customer_who_withdrew_consent_are_to_be_cancelled() -> None:
    greeting = command("schedule_care_task", task_id="G1", kind="birthday_greeting",
                       due_on="2026-06-08", occurred_at="2026-05-01T00:00:00+00:00")  # fmt: skip
    visit = command("schedule_care_task", task_id="V1", kind="return_visit",
                    due_on="2026-06-08", occurred_at="2026-05-01T00:00:00+00:00")  # fmt: skip
    c = customer(consent(True))
    for step in (greeting, visit):
        c = evolve(c, when(c, step))
    assert greetings_without_consent(c, START) == []
    withdrawn = command("change_consent", marketing=False, occurred_at="2026-05-15T00:00:00+00:00")
    c = evolve(c, when(c, withdrawn))
    assert greetings_without_consent(c, START) == ["G1"]  # the return visit stays
    # Withdrawn only after the start of the day: tomorrow's run, in business-time order.
    assert greetings_without_consent(c, START - timedelta(days=20)) == []


def test_command_ids_are_the_same_on_every_run_and_fit_an_id() -> None:
    a = schedule_command_id("check_in", CID, date(2026, 4, 1))
    assert (
        a
        == schedule_command_id("check_in", CID, date(2026, 4, 1))
        == (f"care:check_in:{CID}:2026-04-01")
    )
    long_task = "x" * 128
    assert cancel_command_id(CID, long_task) == cancel_command_id(CID, long_task)
    assert len(cancel_command_id(CID, long_task)) <= 128


def test_days_are_cut_in_the_store_time_zone() -> None:
    # 2026-05-31T20:00Z is 1 June 04:00 in Shanghai: after the start of 1 June there.
    shanghai = ZoneInfo("Asia/Shanghai")
    c = customer(purchase("O1", "10.00", "2026-05-31T20:00:00+00:00"))
    start = datetime(2026, 6, 1, tzinfo=shanghai)
    assert due_care_tasks(c, only("first_purchase_visit"), DAY, start, shanghai) == []
    start = datetime(2026, 6, 2, tzinfo=shanghai)
    tasks = due_care_tasks(c, only("first_purchase_visit"), date(2026, 6, 2), start, shanghai)
    assert [t.task_id for t in tasks] == ["care:first_purchase_visit:2026-06-01"]
