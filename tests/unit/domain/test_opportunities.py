"""Sales opportunities: given a customer, when an opportunity command runs, then these events
(or this error, and no event)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.errors import (
    CustomerErased,
    DuplicateId,
    InvalidState,
    InvalidValue,
    UnknownCurrency,
    UnknownId,
)
from crm_es.domain.history_rules import history_problem
from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline, Stage, parse_pipeline
from crm_es.domain.values import Category
from tests.helpers.domain import CID, NOW, command, evolve, given, registered, types, when

OPEN = {"opportunity_id": "OP-1", "title": "ERP 升级", "amount": "120000.00", "currency": "CNY"}


def opened(**fields: object) -> Customer:
    return given(
        command("register_customer", external_ref="C-1", owner="staff:li"),
        command("open_opportunity", **(OPEN | fields)),
    )


def refused(customer: Customer, type_name: str, error: type[Exception], **fields: object) -> str:
    """The error's message; the command produced no event."""
    with pytest.raises(error) as caught:
        when(customer, command(type_name, **fields))
    return str(caught.value)


def test_opening_records_the_first_stage_with_its_probability_and_the_customers_owner() -> None:
    customer = registered(owner="staff:li")
    events = when(customer, command("open_opportunity", **OPEN, expected_close_on="2026-09-30"))
    assert types(events) == ["OpportunityOpened", "ProfileUpdated"]
    e = events[0]
    assert isinstance(e, ev.OpportunityOpened)
    assert (e.opportunity_id, e.title, e.amount, e.currency) == (
        "OP-1",
        "ERP 升级",
        12_000_000,
        "CNY",
    )
    assert (e.stage, e.probability, e.owner, e.source) == ("lead", 10, "staff:li", None)
    assert e.expected_close_on is not None and e.expected_close_on.isoformat() == "2026-09-30"
    state = evolve(customer, events)
    assert state.opportunities["OP-1"].stage == "lead" and state.opportunities["OP-1"].is_open


def test_opening_at_a_named_stage_for_another_owner_keeps_both() -> None:
    events = when(
        registered(owner="staff:li"),
        command("open_opportunity", **OPEN, stage="proposal", owner="staff:wang", source="fair"),
    )
    e = events[0]
    assert isinstance(e, ev.OpportunityOpened)
    assert (e.stage, e.probability, e.owner, e.source) == ("proposal", 50, "staff:wang", "fair")


def test_the_first_opportunity_makes_a_potential_customer_intended_and_a_win_signed() -> None:
    customer = opened()
    assert customer.category is Category.INTENDED
    second = when(customer, command("open_opportunity", **(OPEN | {"opportunity_id": "OP-2"})))
    assert types(second) == ["OpportunityOpened"]  # the category moves on the first one only
    won = when(customer, command("win_opportunity", opportunity_id="OP-1"))
    assert types(won) == ["OpportunityWon", "ProfileUpdated"]
    assert isinstance(won[1], ev.ProfileUpdated) and won[1].category is Category.SIGNED
    assert evolve(customer, won).category is Category.SIGNED


def test_a_partner_keeps_its_category_whatever_its_opportunities_do() -> None:
    partner = given(
        command("register_customer", external_ref="C-1", category="partner"),
        command("open_opportunity", **OPEN),
        command("win_opportunity", opportunity_id="OP-1"),
    )
    assert partner.category is Category.PARTNER


def test_a_category_set_later_in_business_time_is_not_moved_by_a_back_dated_win() -> None:
    customer = given(
        command("register_customer", external_ref="C-1", occurred_at="2026-01-01T00:00:00+00:00"),
        command("open_opportunity", **OPEN, occurred_at="2026-02-01T00:00:00+00:00"),
        command("update_profile", category="potential", occurred_at="2026-05-01T00:00:00+00:00"),
    )
    won = when(
        customer,
        command("win_opportunity", opportunity_id="OP-1", occurred_at="2026-03-01T00:00:00+00:00"),
    )
    assert types(won) == ["OpportunityWon"]


def test_advancing_moves_to_another_open_stage_forward_or_back() -> None:
    customer = opened()
    (forward,) = when(
        customer, command("advance_opportunity", opportunity_id="OP-1", stage="negotiation")
    )
    assert isinstance(forward, ev.OpportunityAdvanced)
    assert (forward.stage, forward.probability) == ("negotiation", 75)
    customer = evolve(customer, [forward])
    (back,) = when(
        customer, command("advance_opportunity", opportunity_id="OP-1", stage="qualified")
    )
    assert isinstance(back, ev.OpportunityAdvanced) and (back.stage, back.probability) == (
        "qualified",
        25,
    )


def test_advancing_to_the_stage_it_is_at_records_nothing() -> None:
    assert when(opened(), command("advance_opportunity", opportunity_id="OP-1", stage="lead")) == []


@pytest.mark.parametrize(
    ("stage", "words"),
    [
        ("won", "is won by win_opportunity, not moved there; open stages: lead, qualified, "
                "proposal, negotiation"),
        ("lost", "is lost by lose_opportunity"),
        ("closing", "not a stage of this store's pipeline; one of: lead, qualified, proposal, "
                    "negotiation"),
    ],
)  # fmt: skip
def test_a_stage_outside_the_pipeline_is_refused_naming_the_allowed_ones(
    stage: str, words: str
) -> None:
    message = refused(
        opened(), "advance_opportunity", InvalidValue, opportunity_id="OP-1", stage=stage
    )
    assert message.startswith("stage: ") and words in message and repr(stage) in message
    assert words in refused(registered(), "open_opportunity", InvalidValue, **OPEN, stage=stage)


def test_no_stage_change_after_winning_or_losing() -> None:
    won = given(command("register_customer", external_ref="C-1"), command("open_opportunity", **OPEN),
                command("win_opportunity", opportunity_id="OP-1"))  # fmt: skip
    lost = given(command("register_customer", external_ref="C-1"), command("open_opportunity", **OPEN),
                 command("lose_opportunity", opportunity_id="OP-1", lost_reason="price"))  # fmt: skip
    for customer, status in [(won, "won"), (lost, "lost")]:
        for type_name, fields in [
            ("advance_opportunity", {"stage": "proposal"}),
            ("win_opportunity", {}),
            ("lose_opportunity", {"lost_reason": "price"}),
        ]:
            message = refused(customer, type_name, InvalidState, opportunity_id="OP-1", **fields)
            assert f"opportunity 'OP-1' is already {status}" in message


@pytest.mark.parametrize(
    ("type_name", "fields"),
    [
        ("advance_opportunity", {"stage": "proposal"}),
        ("win_opportunity", {}),
        ("lose_opportunity", {"lost_reason": "price"}),
    ],
)
def test_an_unknown_opportunity_is_refused(type_name: str, fields: dict[str, str]) -> None:
    message = refused(opened(), type_name, UnknownId, opportunity_id="OP-9", **fields)
    assert message == f"unknown opportunity 'OP-9' for customer {CID}"


def test_an_opportunity_id_is_used_once() -> None:
    message = refused(opened(), "open_opportunity", DuplicateId, **OPEN)
    assert message == f"opportunity 'OP-1' already exists for customer {CID}"


@pytest.mark.parametrize(
    ("amount", "currency", "error", "words"),
    [
        ("120.001", "CNY", InvalidValue, "CNY allows at most 2 decimal places"),
        ("1.5", "JPY", InvalidValue, "JPY allows at most 0 decimal places"),
        ("100", "XXX", UnknownCurrency, "not a supported ISO 4217 currency code"),
        ("99999999999999999", "CNY", InvalidValue, "implausibly large"),
    ],
)
def test_amounts_follow_the_money_rules_of_purchases(
    amount: str, currency: str, error: type[Exception], words: str
) -> None:
    fields = OPEN | {"amount": amount, "currency": currency}
    assert words in refused(registered(), "open_opportunity", error, **fields)


def test_a_zero_amount_is_an_opportunity_of_unknown_value_and_is_kept() -> None:
    (e, _) = when(registered(), command("open_opportunity", **(OPEN | {"amount": "0"})))
    assert isinstance(e, ev.OpportunityOpened) and e.amount == 0


@pytest.mark.parametrize(("field", "value"), [("amount", "-5"), ("amount", 5), ("amount", "1e3")])
def test_money_on_the_wire_is_a_plain_decimal_string(field: str, value: object) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.amount"):
        command("open_opportunity", **(OPEN | {field: value}))


def test_a_blank_title_and_a_close_date_before_the_opening_are_refused() -> None:
    assert "needs a title" in refused(
        registered(), "open_opportunity", InvalidValue, **(OPEN | {"title": " "})
    )
    before = (NOW - timedelta(days=1)).date().isoformat()
    message = refused(
        registered(), "open_opportunity", InvalidValue, **OPEN, expected_close_on=before
    )
    assert message.startswith("expected_close_on: is before the day the opportunity is opened")


def test_winning_names_an_order_the_customer_has() -> None:
    customer = opened()
    assert "unknown order 'O-1'" in refused(
        customer, "win_opportunity", UnknownId, opportunity_id="OP-1", order_id="O-1"
    )
    customer = evolve(
        customer,
        when(customer, command("record_purchase", order_id="O-1", amount="5", currency="CNY")),
    )
    # the purchase already made the customer signed, so the win moves no category
    (won,) = when(customer, command("win_opportunity", opportunity_id="OP-1", order_id="O-1"))
    assert isinstance(won, ev.OpportunityWon) and won.order_id == "O-1"


def test_losing_keeps_the_reason_code_and_the_note() -> None:
    (lost,) = when(
        opened(),
        command(
            "lose_opportunity", opportunity_id="OP-1", lost_reason="competitor", note="选了对手"
        ),
    )
    assert isinstance(lost, ev.OpportunityLost) and (lost.lost_reason, lost.note) == (
        "competitor",
        "选了对手",
    )
    assert evolve(opened(), [lost]).opportunities["OP-1"].status == "lost"


def test_a_step_dated_before_the_opportunitys_last_one_is_refused() -> None:
    customer = opened(occurred_at="2026-05-10T00:00:00+00:00")
    message = refused(customer, "win_opportunity", InvalidValue, opportunity_id="OP-1",
                      occurred_at="2026-05-09T00:00:00+00:00")  # fmt: skip
    assert "won before opportunity 'OP-1' was opened at 2026-05-10" in message
    customer = evolve(customer, when(customer, command(
        "advance_opportunity", opportunity_id="OP-1", stage="proposal", occurred_at="2026-05-20T00:00:00+00:00")))  # fmt: skip
    message = refused(customer, "lose_opportunity", InvalidValue, opportunity_id="OP-1", lost_reason="price",
                      occurred_at="2026-05-15T00:00:00+00:00")  # fmt: skip
    assert "lost before the last step of opportunity 'OP-1' at 2026-05-20" in message


def test_an_erased_customer_gets_no_new_title_but_its_opportunities_still_close() -> None:
    customer = opened()
    customer = evolve(
        customer, when(customer, command("erase_personal_data", requested_by="customer"))
    )
    refused(customer, "open_opportunity", CustomerErased, **(OPEN | {"opportunity_id": "OP-2"}))
    won = when(customer, command("win_opportunity", opportunity_id="OP-1"))
    assert types(won) == ["OpportunityWon", "ProfileUpdated"]  # signed: no personal data


def test_a_store_pipeline_decides_the_stages_and_probabilities() -> None:
    pipeline = Pipeline(stages=[Stage("visit", "拜访", 5), Stage("contract", "合同", 90)])
    customer = registered()

    def run(type_name: str, **fields: object) -> list[ev.CustomerEvent]:
        c = command(type_name, **fields)
        return decide(customer, c, Envelope.for_command(c, NOW, "test", pipeline=pipeline), CID)

    (e, _) = run("open_opportunity", **OPEN)
    assert isinstance(e, ev.OpportunityOpened) and (e.stage, e.probability) == ("visit", 5)
    with pytest.raises(InvalidValue, match="one of: visit, contract"):
        run("open_opportunity", **OPEN, stage="lead")


def test_a_pipeline_is_checked_when_it_is_read() -> None:
    assert parse_pipeline(msgspec.json.encode(DEFAULT_PIPELINE)) == DEFAULT_PIPELINE
    for text, words in [
        ('{"stages": []}', "Expected `array` of length >= 1 - at `$.stages`"),
        (
            '{"stages": [{"key": "Lead", "label": "x", "probability": 10}]}',
            "a stage key is lower-case",
        ),
        (
            '{"stages": [{"key": "a", "label": "x", "probability": 101}]}',
            "<= 100 - at `$.stages[0].probability`",
        ),
        (
            '{"stages": [{"key": "a", "label": "x", "probability": 1}, {"key": "a", "label": "y", "probability": 2}]}',
            "stage 'a' is listed twice",
        ),
        (
            '{"stages": [{"key": "won", "label": "x", "probability": 100}]}',
            "'won' is how an opportunity closes",
        ),
        (
            '{"stages": [{"key": "a", "label": "x", "probability": 1}], "extra": 1}',
            "unknown field `extra`",
        ),
        ("not json", "not JSON"),
    ]:
        with pytest.raises(InvalidValue) as caught:
            parse_pipeline(text)
        assert str(caught.value).startswith("pipeline: ") and words in str(caught.value), str(
            caught.value
        )


def test_an_imported_history_with_a_forged_opportunity_step_is_refused() -> None:
    customer_events = when(None, command("register_customer", external_ref="C-1"))
    state = evolve(None, customer_events)
    opened_events = when(state, command("open_opportunity", **OPEN))
    state = evolve(state, opened_events)
    lost = when(state, command("lose_opportunity", opportunity_id="OP-1", lost_reason="price"))
    good = customer_events + opened_events + lost
    assert history_problem(good) is None
    version = len(good) + 1
    after_lost = msgspec.structs.replace(lost[0], originator_version=version)
    won_again = ev.OpportunityWon(**{
        f: getattr(after_lost, f) for f in ev.CustomerEvent.__struct_fields__ if f != "on_behalf_of"
    }, opportunity_id="OP-1")  # fmt: skip
    assert history_problem([*good, won_again]) == (
        version,
        "a step of opportunity 'OP-1' after it was lost",
    )
    twice = msgspec.structs.replace(opened_events[0], originator_version=version)
    assert history_problem([*good, twice]) == (version, "opportunity 'OP-1' opened twice")
    odd_stage = msgspec.structs.replace(opened_events[0], stage="Lead Stage", opportunity_id="OP-2",
                                        originator_version=version)  # fmt: skip
    assert history_problem([*good, odd_stage]) == (
        version,
        "a stage 'Lead Stage' at 10% that no pipeline holds",
    )
