"""Categories that follow the customer (issue 18, item 5): the seeds' full set, 准客户 included,
and the moves opportunities and a first purchase make. Given a customer, when a command runs, then these events."""

from __future__ import annotations

import msgspec
import pytest

from crm_es.domain import events as ev
from crm_es.domain.commands import RegisterCustomer
from crm_es.domain.values import CATEGORY_LABELS, FUNNEL_CATEGORIES, Category
from tests.helpers.domain import command, evolve, given, types, when

OPEN = {"opportunity_id": "OP-1", "title": "年度采购", "amount": "80000.00", "currency": "CNY"}


def test_the_seeds_categories_are_all_accepted_on_the_wire_with_their_chinese_names() -> None:
    for value in ("potential", "intended", "prospective", "signed", "partner", "internal"):
        registered = msgspec.json.decode(
            f'{{"type":"register_customer","external_ref":"C-1","category":"{value}"}}',
            type=RegisterCustomer,
        )
        assert registered.category.value == value
    assert [CATEGORY_LABELS[c] for c in FUNNEL_CATEGORIES] == ["潜在客户", "意向客户", "准客户",
                                                                "签约客户"]  # fmt: skip
    assert set(CATEGORY_LABELS) == set(Category)
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value '准客户'"):
        msgspec.json.decode(
            '{"type":"register_customer","external_ref":"C-1","category":"准客户"}',
            type=RegisterCustomer,
        )


def test_a_prospective_customer_becomes_signed_when_an_opportunity_is_won() -> None:
    customer = given(command("register_customer", external_ref="C-1", category="prospective"))
    opened = when(customer, command("open_opportunity", **OPEN))
    assert types(opened) == ["OpportunityOpened"]  # 准 is past 意向: a first deal moves nothing
    customer = evolve(customer, opened)
    assert customer.category is Category.PROSPECTIVE
    won = when(customer, command("win_opportunity", opportunity_id="OP-1"))
    assert types(won) == ["OpportunityWon", "ProfileUpdated"]
    assert isinstance(won[1], ev.ProfileUpdated) and won[1].category is Category.SIGNED
    assert evolve(customer, won).category is Category.SIGNED


def test_staff_move_a_customer_to_prospective_and_that_is_recorded_as_a_profile_update() -> None:
    customer = given(
        command("register_customer", external_ref="C-1"),
        command("open_opportunity", **OPEN),
    )
    assert customer.category is Category.INTENDED
    moved = when(customer, command("update_profile", category="prospective"))
    assert types(moved) == ["ProfileUpdated"]
    assert evolve(customer, moved).category is Category.PROSPECTIVE


BUY = {"amount": "120.00", "currency": "CNY"}


@pytest.mark.parametrize("category", ["potential", "intended", "prospective"])
def test_a_first_purchase_makes_a_funnel_customer_signed(category: str) -> None:
    customer = given(command("register_customer", external_ref="C-1", category=category))
    bought = when(customer, command("record_purchase", order_id="O-1", **BUY))
    assert types(bought) == ["PurchaseRecorded", "ProfileUpdated"]
    assert isinstance(bought[1], ev.ProfileUpdated) and bought[1].category is Category.SIGNED
    customer = evolve(customer, bought)
    assert customer.category is Category.SIGNED
    # only the first purchase moves: the second records the purchase alone
    assert types(when(customer, command("record_purchase", order_id="O-2", **BUY))) == [
        "PurchaseRecorded"
    ]


@pytest.mark.parametrize("category", ["signed", "partner", "internal"])
def test_a_first_purchase_leaves_signed_partner_and_internal_customers_where_they_are(
    category: str,
) -> None:
    customer = given(command("register_customer", external_ref="C-1", category=category))
    bought = when(customer, command("record_purchase", order_id="O-1", **BUY))
    assert types(bought) == ["PurchaseRecorded"]


def test_a_first_purchase_dated_before_a_later_category_change_leaves_that_change_standing() -> (
    None
):
    customer = given(
        command("register_customer", external_ref="C-1", occurred_at="2026-01-01T00:00:00Z"),
        command("update_profile", category="intended", occurred_at="2026-03-01T00:00:00Z"),
    )
    back_dated = command(
        "record_purchase", order_id="O-1", occurred_at="2026-02-01T00:00:00Z", **BUY
    )
    assert types(when(customer, back_dated)) == ["PurchaseRecorded"]
    assert evolve(customer, when(customer, back_dated)).category is Category.INTENDED
