"""The base of every command: the optional envelope each one accepts, and the base of the
commands that name a customer. Kept apart from :mod:`crm_es.domain.commands` (which re-exports
both) so command groups may live in modules of their own (:mod:`crm_es.domain.goal_commands`).
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from crm_es.domain.command_fields import AwareDatetime, Id, Text


class Command(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    gc=False,  # never in a reference cycle; untracked, bulk loads spend far less time in GC
):
    """Base of every command: the optional envelope every command accepts."""

    command_id: Id | None = None  # idempotency key
    # The actor is the principal the CRM was opened for: a different one here is refused
    # (domain/policy.py). An integration names the person it acts for in on_behalf_of.
    actor: Id | None = None
    # "user:li" behind an "api:shop" integration; unset, it is not encoded, so the payload
    # hashes of commands stored before it existed still match a re-send.
    on_behalf_of: Id | UnsetType = UNSET
    correlation_id: Id | None = None
    causation_id: Id | None = None
    reason: Text | None = None
    occurred_at: AwareDatetime | None = None  # business time; defaults to the recorded time


class CustomerCommand(Command, frozen=True, kw_only=True):
    """A command on an existing customer, addressed by UUID or external ref."""

    customer: Id
