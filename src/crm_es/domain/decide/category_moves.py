"""Categories that follow the customer (issue 18, item 5): the moves events make by themselves.

A customer moves along the seeds' funnel 潜在 → 意向 → 准 → 签约 (potential → intended →
prospective → signed) as staff set it, and by itself when its opportunities say so:

- its first sales opportunity makes a potential customer intended (意向客户);
- a won opportunity or a first purchase makes a potential, intended or prospective customer
  signed (签约客户): a customer who has bought is under contract, whatever staff had set.

Partners and internal accounts never move by themselves, nor does a customer already signed.
Each move is a ``ProfileUpdated`` of the category in the same batch as the event that caused it
(same business time, same command id), so the read models keep it as the category's history and
a report as of any date sees it from then on. A category set at a later business time than the
command's is left alone: the command is then history, not the present (the same rule
``update_profile`` follows).

Every path that decides these commands — one command, ``execute_many``, the bulk pipeline —
runs the one decider of :mod:`crm_es.domain.decide`, so they all record the same moves.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Final

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide.envelope import Batch
from crm_es.domain.values import Category

# The categories a customer leaves for intended / signed when its events say so.
BECOMES_INTENDED: Final = frozenset({Category.POTENTIAL})
BECOMES_SIGNED: Final = frozenset({Category.POTENTIAL, Category.INTENDED, Category.PROSPECTIVE})


def move_category(cu: Customer, b: Batch, leaving: frozenset[Category], to: Category) -> None:
    """Record ``to`` as the customer's category when it is one of ``leaving`` and no later
    category change stands."""
    if cu.category in leaving and not cu.changed_since("category", b.envelope.occurred_at):
        b.add(ev.ProfileUpdated, category=to)


def after_first_opportunity(cu: Customer, b: Batch) -> None:
    """A first opportunity (``cu`` as it was before it): potential → intended."""
    if not cu.opportunities:
        move_category(cu, b, BECOMES_INTENDED, Category.INTENDED)


def after_win(cu: Customer, b: Batch) -> None:
    """A won opportunity: potential, intended or prospective → signed."""
    move_category(cu, b, BECOMES_SIGNED, Category.SIGNED)


def after_first_purchase(cu: Customer, b: Batch) -> None:
    """A first purchase (``cu`` as it was before it): potential, intended, prospective → signed."""
    if not cu.orders:
        move_category(cu, b, BECOMES_SIGNED, Category.SIGNED)
