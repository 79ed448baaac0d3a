"""Every command: given a customer, when the command runs, then these events (or this error)."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
import pytest

from crm_es.domain import events as ev
from crm_es.domain.errors import (
    CustomerErased,
    CustomerNotFound,
    DuplicateId,
    FutureBusinessTime,
    InsufficientPoints,
    InvalidState,
    InvalidValue,
    RefundExceedsPaid,
    UnknownCurrency,
    UnknownId,
)
from tests.helpers.domain import NOW, command, evolve, given, registered, types, when


def test_registering_emits_registered_then_owner_and_tags() -> None:
    events = when(
        None,
        command(
            "register_customer",
            external_ref="C-1",
            name="王芳",
            owner="staff:li",
            tags=["vip", "vip", "b2c"],
        ),
    )
    assert types(events) == ["CustomerRegistered", "OwnerAssigned", "TagsChanged"]
    assert [e.originator_version for e in events] == [1, 2, 3]
    customer = evolve(None, events)
    assert (customer.name, customer.owner, customer.tags) == ("王芳", "staff:li", ["b2c", "vip"])


def test_every_event_carries_the_full_envelope() -> None:
    c = command(
        "register_customer",
        external_ref="C-1",
        on_behalf_of="user:alice",
        command_id="cmd-1",
        correlation_id="corr",
        causation_id="cause",
        reason="walk-in",
        occurred_at="2026-05-01T09:00:00+08:00",
    )
    (e,) = when(None, c)
    assert e.recorded_at == NOW
    assert e.occurred_at.isoformat() == "2026-05-01T09:00:00+08:00"
    assert (e.actor, e.on_behalf_of, e.command_id, e.correlation_id, e.causation_id, e.reason) == (
        "test",  # the principal that sent it
        "user:alice",
        "cmd-1",
        "corr",
        "cause",
        "walk-in",
    )


def test_business_time_defaults_to_recorded_time() -> None:
    (e,) = when(None, command("register_customer", external_ref="C-1"))
    assert e.occurred_at == e.recorded_at == NOW


def test_business_time_far_in_the_future_is_rejected() -> None:
    future = (NOW + timedelta(days=2)).isoformat()
    with pytest.raises(FutureBusinessTime, match="future"):
        when(None, command("register_customer", external_ref="C-1", occurred_at=future))


def test_small_clock_skew_into_the_future_is_tolerated() -> None:
    skewed = (NOW + timedelta(minutes=2)).isoformat()
    assert when(None, command("register_customer", external_ref="C-1", occurred_at=skewed))


def test_commands_on_an_unregistered_customer_fail() -> None:
    with pytest.raises(CustomerNotFound, match="C-1"):
        when(None, command("log_contact", channel="phone", direction="inbound"))


def test_profile_update_records_only_changed_fields() -> None:
    customer = registered(region="华东")
    (e,) = when(customer, command("update_profile", region="华东", email="new@example.com"))
    assert isinstance(e, ev.ProfileUpdated)
    assert e.email == "new@example.com" and e.region is ev.UNSET
    assert when(customer, command("update_profile", region="华东")) == []


def test_profile_update_can_clear_a_field() -> None:
    customer = registered(region="华东")
    after = evolve(customer, when(customer, command("update_profile", region=None)))
    assert after.region is None


def test_tags_cannot_be_added_and_removed_at_once() -> None:
    with pytest.raises(InvalidValue, match="both added and removed"):
        when(registered(), command("change_tags", add=["x"], remove=["x"]))


def test_tag_changes_that_change_nothing_emit_nothing() -> None:
    customer = registered(tags=["vip"])
    assert when(customer, command("change_tags", add=["vip"], remove=["gone"])) == []


def test_owner_and_consent_are_recorded() -> None:
    customer = registered()
    customer = evolve(customer, when(customer, command("assign_owner", owner="staff:wang")))
    customer = evolve(
        customer, when(customer, command("change_consent", marketing=True, lawful_basis="consent"))
    )
    assert customer.owner == "staff:wang" and customer.marketing_consent is True


def test_contacts_are_counted() -> None:
    customer = registered()
    (e,) = when(
        customer,
        command(
            "log_contact",
            channel="wechat",
            direction="outbound",
            summary="回访",
            outcome="ok",
            feedback="满意",
        ),
    )
    assert isinstance(e, ev.ContactLogged) and evolve(customer, [e]).contacts == 1


def test_purchase_is_stored_in_minor_units() -> None:
    e = when(
        registered(), command("record_purchase", order_id="O-1", amount="129.90", currency="CNY")
    )[0]
    assert isinstance(e, ev.PurchaseRecorded) and (e.amount, e.currency) == (12990, "CNY")


def test_a_free_order_is_valid() -> None:
    e = when(registered(), command("record_purchase", order_id="O-0", amount="0", currency="CNY"))[
        0
    ]
    assert isinstance(e, ev.PurchaseRecorded) and e.amount == 0


@pytest.mark.parametrize(
    ("amount", "currency", "error", "text"),
    [
        ("1.234", "CNY", InvalidValue, "at most 2 decimal places"),
        ("1.5", "JPY", InvalidValue, "at most 0 decimal places"),
        ("100000000000000000000", "CNY", InvalidValue, "implausibly large"),
        ("10", "XYZ", UnknownCurrency, "XYZ"),
    ],
)
def test_bad_purchase_amounts_are_rejected(
    amount: str, currency: str, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        when(
            registered(),
            command("record_purchase", order_id="O-1", amount=amount, currency=currency),
        )


@pytest.mark.parametrize(
    "amount", ["-0.01", "-0.00", "NaN", "Infinity", "1e20", "1_000", "１２９.９０", " 1", "1.", ".5",
               "0x10", "", 129.9, 10],
)  # fmt: skip
def test_money_on_the_wire_is_a_decimal_string_of_ascii_digits(amount: object) -> None:
    with pytest.raises(msgspec.ValidationError, match="decimal string of ASCII digits"):
        command("record_purchase", order_id="O-1", amount=amount, currency="CNY")


def test_duplicate_order_id_is_rejected() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("record_purchase", order_id="O-1", amount="10", currency="CNY"),
    )
    with pytest.raises(DuplicateId, match="order 'O-1'"):
        when(customer, command("record_purchase", order_id="O-1", amount="10", currency="CNY"))


def test_refunds_never_exceed_what_was_paid() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("record_purchase", order_id="O-1", amount="100", currency="CNY"),
        command("refund_purchase", order_id="O-1", amount="60"),
    )
    with pytest.raises(RefundExceedsPaid, match=r"50.00 CNY.*40.00 CNY"):
        when(customer, command("refund_purchase", order_id="O-1", amount="50"))
    (e,) = when(customer, command("refund_purchase", order_id="O-1"))
    assert isinstance(e, ev.PurchaseRefunded) and e.amount == 4000


def test_refund_of_an_unknown_order_or_other_currency_is_rejected() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("record_purchase", order_id="O-1", amount="100", currency="CNY"),
    )
    with pytest.raises(UnknownId, match="order 'O-9'"):
        when(customer, command("refund_purchase", order_id="O-9"))
    with pytest.raises(InvalidValue, match="paid in CNY"):
        when(customer, command("refund_purchase", order_id="O-1", currency="USD"))


def test_tier_follows_rolling_twelve_month_spend() -> None:
    customer = registered()
    events = when(
        customer, command("record_purchase", order_id="O-1", amount="6000", currency="CNY")
    )
    # the first purchase also makes the potential customer signed (category_moves)
    assert types(events) == ["PurchaseRecorded", "TierChanged", "ProfileUpdated"]
    customer = evolve(customer, events)
    assert customer.tier == "silver"
    events = when(customer, command("refund_purchase", order_id="O-1", amount="2000"))
    assert types(events) == ["PurchaseRefunded", "TierChanged"]
    assert evolve(customer, events).tier == "standard"


def test_purchases_older_than_twelve_months_do_not_count_for_tier() -> None:
    customer = registered()
    old = (NOW - timedelta(days=400)).isoformat()
    customer = evolve(
        customer,
        when(
            customer,
            command(
                "record_purchase", order_id="O-1", amount="6000", currency="CNY", occurred_at=old
            ),
        ),
    )
    events = when(customer, command("record_purchase", order_id="O-2", amount="10", currency="CNY"))
    assert types(events) == ["PurchaseRecorded", "TierChanged"]
    assert isinstance(events[1], ev.TierChanged) and events[1].to_tier == "standard"


def test_service_on_an_unknown_order_is_rejected() -> None:
    with pytest.raises(UnknownId, match="order 'O-1'"):
        when(
            registered(),
            command("record_service", phase="after-sale", kind="installation", order_id="O-1"),
        )
    (e,) = when(registered(), command("record_service", phase="pre-sale", kind="demo"))
    assert isinstance(e, ev.ServiceRecorded)


def test_complaint_sla_due_comes_from_severity() -> None:
    (e,) = when(
        registered(),
        command("file_complaint", complaint_id="K-1", category="delivery", severity="high"),
    )
    assert isinstance(e, ev.ComplaintFiled) and e.sla_due == NOW + timedelta(hours=24)


def test_complaint_lifecycle_rules() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("file_complaint", complaint_id="K-1", category="delivery", severity="low"),
    )
    with pytest.raises(DuplicateId, match="complaint 'K-1'"):
        when(customer, command("file_complaint", complaint_id="K-1", category="x", severity="low"))
    with pytest.raises(UnknownId, match="complaint 'K-9'"):
        when(customer, command("resolve_complaint", complaint_id="K-9", resolution="r"))
    with pytest.raises(InvalidState, match="not resolved"):
        when(customer, command("reopen_complaint", complaint_id="K-1"))
    with pytest.raises(InvalidState, match="not resolved"):
        when(customer, command("follow_up_complaint", complaint_id="K-1", satisfied=True))
    customer = evolve(
        customer,
        when(
            customer, command("escalate_complaint", complaint_id="K-1", escalated_to="staff:boss")
        ),
    )
    assert customer.complaints["K-1"].status == "escalated"
    customer = evolve(
        customer,
        when(customer, command("resolve_complaint", complaint_id="K-1", resolution="refunded")),
    )
    with pytest.raises(InvalidState, match="already resolved"):
        when(customer, command("resolve_complaint", complaint_id="K-1", resolution="again"))
    with pytest.raises(InvalidState, match="reopen it"):
        when(customer, command("escalate_complaint", complaint_id="K-1"))
    customer = evolve(
        customer,
        when(customer, command("follow_up_complaint", complaint_id="K-1", satisfied=False)),
    )
    customer = evolve(customer, when(customer, command("reopen_complaint", complaint_id="K-1")))
    assert customer.complaints["K-1"].status == "open"
    assert customer.complaints["K-1"].reopen_count == 1


def test_compensation_needs_a_currency() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("file_complaint", complaint_id="K-1", category="x", severity="low"),
    )
    with pytest.raises(InvalidValue, match="compensation_currency"):
        when(
            customer,
            command("resolve_complaint", complaint_id="K-1", resolution="r", compensation="10"),
        )
    (e,) = when(
        customer,
        command(
            "resolve_complaint",
            complaint_id="K-1",
            resolution="r",
            compensation="10.50",
            compensation_currency="CNY",
        ),
    )
    assert isinstance(e, ev.ComplaintResolved) and e.compensation == 1050


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"metric": "csat", "score": 6}, "outside the csat scale 1-5"),
        ({"metric": "csat", "score": 0}, "outside the csat scale 1-5"),
        ({"metric": "nps", "score": 11}, "outside the nps scale 0-10"),
        ({"metric": "ces", "score": 8}, "outside the ces scale 1-7"),
        (
            {"metric": "ces", "score": 6, "scale_min": 1, "scale_max": 5},
            "outside the ces scale 1-5",
        ),
        ({"metric": "gap", "expectation": 5}, "expectation and performance"),
        ({"metric": "gap", "expectation": 5, "performance": 9}, "outside the gap scale"),
        ({"metric": "csat"}, "takes one score"),
        ({"metric": "nps", "score": 5, "scale_min": 5, "scale_max": 5}, "below scale_max"),
    ],
)
def test_survey_scores_outside_the_scale_are_rejected(fields: dict[str, object], text: str) -> None:
    with pytest.raises(InvalidValue, match=text):
        when(registered(), command("answer_survey", survey_id="S-1", **fields))


def test_survey_answers_store_their_scale_and_are_unique_per_survey() -> None:
    (e,) = when(registered(), command("answer_survey", survey_id="S-1", metric="nps", score=9))
    assert isinstance(e, ev.SurveyAnswered) and (e.scale_min, e.scale_max) == (0, 10)
    customer = evolve(registered(), [e])
    with pytest.raises(DuplicateId, match="survey answer 'S-1'"):
        when(customer, command("answer_survey", survey_id="S-1", metric="nps", score=3))


def test_redeeming_uses_soonest_expiring_points_first() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("grant_points", points=100),  # never expires: lot 2
        command("grant_points", points=50, expires_on="2026-12-31"),  # lot 3
        command("grant_points", points=30, expires_on="2026-07-31"),  # lot 4
    )
    (e,) = when(customer, command("redeem_points", points=60, reward="coupon"))
    assert isinstance(e, ev.PointsRedeemed)
    assert [(d.lot_id, d.points) for d in e.draws] == [(4, 30), (3, 30)]
    assert evolve(customer, [e]).points_balance == 120


def test_redeeming_more_than_available_is_rejected_and_expired_points_do_not_count() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("grant_points", points=100, expires_on="2026-06-10"),
        command("grant_points", points=20),
    )
    later = NOW + timedelta(days=30)
    with pytest.raises(InsufficientPoints, match="only 20 available"):
        when(customer, command("redeem_points", points=50), now=later)
    events = when(customer, command("redeem_points", points=10), now=later)
    assert types(events) == ["PointsExpired", "PointsRedeemed"]
    assert evolve(customer, events).points_balance == 10


def test_expiring_points_removes_only_lots_past_their_date() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("grant_points", points=100, expires_on="2026-06-10"),
        command("grant_points", points=5, expires_on="2027-01-01"),
    )
    assert when(customer, command("expire_points")) == []
    events = when(customer, command("expire_points"), now=NOW + timedelta(days=10))
    assert types(events) == ["PointsExpired"] and evolve(customer, events).points_balance == 5


def test_points_cannot_expire_before_they_are_granted() -> None:
    with pytest.raises(InvalidValue, match="expires_on"):
        when(registered(), command("grant_points", points=1, expires_on=str(date(2026, 1, 1))))


def test_care_task_lifecycle_rules() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command(
            "schedule_care_task",
            task_id="T-1",
            kind="return_visit",
            due_on="2026-06-08",
            staff="staff:li",
        ),
    )
    with pytest.raises(DuplicateId, match="care task 'T-1'"):
        when(
            customer,
            command("schedule_care_task", task_id="T-1", kind="check_in", due_on="2026-06-09"),
        )
    with pytest.raises(UnknownId, match="care task 'T-2'"):
        when(customer, command("complete_care_task", task_id="T-2"))
    customer = evolve(customer, when(customer, command("complete_care_task", task_id="T-1")))
    with pytest.raises(InvalidState, match="already completed"):
        when(customer, command("cancel_care_task", task_id="T-1"))


def test_churn_and_win_back() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("churn_customer", churn_reason="moved away"),
    )
    with pytest.raises(InvalidState, match="already churned"):
        when(customer, command("churn_customer", churn_reason="again"))
    events = when(customer, command("record_purchase", order_id="O-1", amount="1", currency="CNY"))
    assert types(events) == ["PurchaseRecorded", "CustomerWonBack", "ProfileUpdated"]
    customer = evolve(customer, events)
    assert not customer.churned and customer.won_back_count == 1
    with pytest.raises(InvalidState, match="not churned"):
        when(customer, command("win_back_customer"))


def test_erasure_blanks_personal_data_and_blocks_new_personal_data() -> None:
    customer = registered(email="wf@example.com")
    customer = evolve(
        customer, when(customer, command("erase_personal_data", requested_by="user:dpo"))
    )
    assert customer.erased and customer.name is None and customer.email is None
    with pytest.raises(CustomerErased, match="personal data"):
        when(customer, command("update_profile", name="someone"))
    with pytest.raises(CustomerErased):
        when(customer, command("log_contact", channel="phone", direction="inbound", summary="hi"))
    assert when(customer, command("record_purchase", order_id="O-1", amount="5", currency="CNY"))
    with pytest.raises(InvalidState, match="already been erased"):
        when(customer, command("erase_personal_data", requested_by="user:dpo"))
