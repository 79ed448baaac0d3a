"""Deciding a merge: a customer registered twice folded into the one that stays.

The one command that writes to two streams. :func:`decide_merge` gets both states and returns
the events of each; the caller saves them in ONE transaction (both or neither). What a merge
does, and refuses (one place for the rules, documented in README "Merging customers"):

- **Refused**, storing nothing: a customer merged into itself; either side unknown, erased
  (its personal data is gone: nothing left to identify the pair by, and an erasure request
  means the person asked to be forgotten, not folded) or already merged (the duplicate names
  its survivor; a closed survivor names the one to merge into instead); a business time before
  either customer's latest fact (business time runs forward within a customer: a back-dated
  merge would move no points granted after it); a duplicate with open sales opportunities
  (money and owners a person must win, lose or re-open on the survivor first) or open
  complaints (no step could resolve them once it is closed).
- **The duplicate**: its open care tasks are cancelled (the survivor's own rules schedule the
  survivor's); then ``CustomersMerged`` closes it: every later command on it is refused naming
  the survivor, except an erasure (its personal data stays its own, under its own key, and can
  always be erased) and a refund of one of its orders. Its live loyalty points go with it
  (``points_moved``).
- **The survivor**: ``CustomersMerged`` (without the command's id, which the duplicate's
  side and the idempotency record carry: a record names one stream's events) records the
  duplicate as absorbed; the duplicate's live points arrive as ``PointsGranted`` lots of the
  same size and expiry. Its consent, personal data, owner, tier and category stay its own
  (consent is never inferred from another record).

The reports count the pair as one from the merge on (see :mod:`crm_es.reports.facts.merges`).
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.business_order import latest_time, order_problem
from crm_es.domain.customer import Customer
from crm_es.domain.decide.envelope import Batch, Envelope
from crm_es.domain.errors import (
    CustomerErased,
    CustomerMergedAway,
    CustomerNotFound,
    InvalidState,
    InvalidValue,
)

Merged = tuple[list[ev.CustomerEvent], list[ev.CustomerEvent]]
"""The events of the duplicate's stream, then the survivor's."""


def decide_merge(
    duplicate: Customer | None,
    survivor: Customer | None,
    command: cmd.MergeCustomers,
    envelope: Envelope,
    duplicate_id: UUID,
    survivor_id: UUID,
) -> Merged:
    """The events of merging ``duplicate`` into ``survivor``, or the CrmError refusing it."""
    if duplicate_id == survivor_id:
        raise InvalidValue("into", command.into, "a customer cannot be merged into itself")
    if duplicate is None:
        raise CustomerNotFound(command.customer)
    if survivor is None:
        raise CustomerNotFound(command.into)
    _check_side(duplicate, "merge it into another")
    _check_side(survivor, "merge another into it")
    for side in (duplicate, survivor):
        # Business time runs forward within a customer (design §4): a merge dated before
        # either side's latest fact would move the points, tasks and state of another day.
        latest = latest_time(side)
        if envelope.occurred_at < latest:
            why = (
                f"customer {side.id} has a later fact at {latest.isoformat()}: "
                "a merge cannot be dated before either customer's latest event"
            )
            raise InvalidValue("occurred_at", envelope.occurred_at.isoformat(), why)
    still_open = sorted(k for k, o in duplicate.opportunities.items() if o.is_open)
    if still_open:
        raise InvalidState(
            f"customer {duplicate.id} has open sales opportunities {', '.join(still_open)}: "
            "win, lose or re-open them on the survivor before merging"
        )
    # A complaint on a closed customer could never be resolved (every step on it is refused)
    # and would stand past its SLA on every agenda for good.
    unresolved = sorted(duplicate.open_complaints())
    if unresolved:
        raise InvalidState(
            f"customer {duplicate.id} has open complaints {', '.join(unresolved)}: "
            "resolve them before merging"
        )
    closing = Batch(duplicate.id, duplicate.version, envelope)
    for task_id in sorted(duplicate.open_care_tasks()):
        event = closing.add(ev.CareTaskCancelled, task_id=task_id)
        problem = order_problem(duplicate, event)
        if problem is not None:
            raise InvalidValue("occurred_at", envelope.occurred_at.isoformat(), problem)
    lots = duplicate.live_lots(envelope.day, envelope.occurred_at)
    moved = sum(lot.remaining for lot in lots)
    ids = {"duplicate_id": duplicate.id, "survivor_id": survivor.id}
    closing.add(ev.CustomersMerged, points_moved=moved, **ids)
    # The command's id goes on the duplicate's side only: its idempotency record names one
    # stream's events (what audit verify checks); the survivor's side names the duplicate.
    absorbing = Batch(
        survivor.id, survivor.version, msgspec.structs.replace(envelope, command_id=None)
    )
    absorbing.add(ev.CustomersMerged, points_moved=moved, **ids)
    for lot in lots:
        absorbing.add(
            ev.PointsGranted, lot_id=absorbing.version + 1, points=lot.remaining,
            expires_on=lot.expires_on,
        )  # fmt: skip
    return closing.events, absorbing.events


def _check_side(customer: Customer, what: str) -> None:
    if customer.merged_into is not None:
        raise CustomerMergedAway(customer.id, customer.merged_into, what)
    if customer.erased:
        raise CustomerErased(customer.id, what)


STILL_ALLOWED_WHEN_MERGED = (cmd.ErasePersonalData, cmd.RefundPurchase)
"""The commands a duplicate closed by a merge still takes: an erasure (its personal data is its
own to erase) and a refund of one of its orders (the money returned is recorded on the stream
that holds the order; the reports fold it into the survivor like its other facts)."""


def refuse_if_merged(customer: Customer, command: cmd.Command) -> None:
    """Every command on a duplicate closed by a merge is refused, naming the survivor, but those
    of :data:`STILL_ALLOWED_WHEN_MERGED`."""
    if customer.merged_into is not None and not isinstance(command, STILL_ALLOWED_WHEN_MERGED):
        kind = cmd.command_type_name(command)
        raise CustomerMergedAway(customer.id, customer.merged_into, kind)
