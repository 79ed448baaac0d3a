"""Categories that follow the customer (issue 18, item 5): the seeds' full set, 准客户 included,
and the moves opportunities make. Given a customer, when a command runs, then these events."""

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
