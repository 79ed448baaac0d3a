"""Sales-opportunity deciders: open, advance, win, lose (跟踪销售机会).

Each ``xxx(customer, command, batch)`` checks the rules for one command and adds its events to the
:class:`~crm_es.domain.decide.envelope.Batch`; a rule that fails raises a
:class:`~crm_es.domain.errors.CrmError` before any event exists, so nothing is stored. The rules:
an opportunity id is used once per customer; the amount is Money (a known currency, no more
decimals than it has, not negative); a stage is an open stage of the store's pipeline, which the
envelope carries (:mod:`crm_es.domain.pipeline`), and the error names the allowed ones; an
unknown opportunity is refused; a closed one (won or lost) takes no further step. A step dated
before the opportunity's latest one is refused by :mod:`crm_es.domain.business_order`.

The customer's category follows its opportunities (issue 18, item 5): the first opportunity of a
potential customer makes it intended (意向客户), a won one makes a potential, intended or
prospective customer signed (签约客户), as :mod:`crm_es.domain.decide.category_moves` says.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide.category_moves import after_first_opportunity, after_win
from crm_es.domain.decide.envelope import Batch
from crm_es.domain.errors import DuplicateId, InvalidState, InvalidValue, UnknownId
from crm_es.domain.opportunity import Opportunity
from crm_es.domain.values import Money


def open_opportunity(cu: Customer, c: cmd.OpenOpportunity, b: Batch) -> None:
    if c.opportunity_id in cu.opportunities:
        raise DuplicateId("opportunity", c.opportunity_id, cu.id)
    if not c.title.strip():
        raise InvalidValue("title", c.title, "an opportunity needs a title")
    money = Money.parse(c.amount, c.currency)
    stage = b.envelope.pipeline.open_stage(c.stage)
    day = b.envelope.day
    if c.expected_close_on is not None and c.expected_close_on < day:
        why = f"is before the day the opportunity is opened ({day.isoformat()})"
        raise InvalidValue("expected_close_on", c.expected_close_on.isoformat(), why)
    b.add(
        ev.OpportunityOpened,
        opportunity_id=c.opportunity_id,
        title=c.title,
        amount=money.minor,
        currency=money.currency,
        stage=stage.key,
        probability=stage.probability,
        expected_close_on=c.expected_close_on,
        owner=c.owner if c.owner is not None else cu.owner,
        source=c.source,
    )
    after_first_opportunity(cu, b)


def advance_opportunity(cu: Customer, c: cmd.AdvanceOpportunity, b: Batch) -> None:
    opportunity = _open(cu, c.opportunity_id, f"move it to {c.stage!r}")
    stage = b.envelope.pipeline.open_stage(c.stage)
    if stage.key != opportunity.stage:  # already there: nothing to record
        b.add(
            ev.OpportunityAdvanced,
            opportunity_id=c.opportunity_id,
            stage=stage.key,
            probability=stage.probability,
        )


def win_opportunity(cu: Customer, c: cmd.WinOpportunity, b: Batch) -> None:
    _open(cu, c.opportunity_id, "win it")
    if c.order_id is not None and c.order_id not in cu.orders:
        raise UnknownId("order", c.order_id, cu.id)
    b.add(ev.OpportunityWon, opportunity_id=c.opportunity_id, order_id=c.order_id)
    after_win(cu, b)


def lose_opportunity(cu: Customer, c: cmd.LoseOpportunity, b: Batch) -> None:
    _open(cu, c.opportunity_id, "lose it")
    b.add(
        ev.OpportunityLost, opportunity_id=c.opportunity_id, lost_reason=c.lost_reason, note=c.note
    )


def _open(cu: Customer, opportunity_id: str, action: str) -> Opportunity:
    """The opportunity, which must exist and still be open."""
    opportunity = cu.opportunities.get(opportunity_id)
    if opportunity is None:
        raise UnknownId("opportunity", opportunity_id, cu.id)
    if not opportunity.is_open:
        raise InvalidState(
            f"opportunity {opportunity_id!r} is already {opportunity.status}; cannot {action} "
            "(a closed opportunity takes no further step: open a new one)"
        )
    return opportunity
