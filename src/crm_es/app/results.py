"""What running a command returns, and what makes two commands "the same" for idempotency."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain.events import CustomerEvent
from crm_es.store.recorders import CommandRecord


class CommandResult(msgspec.Struct, frozen=True, gc=False):
    customer_id: UUID
    version: int
    events: int  # how many events the command appended (0 for a no-op such as an unchanged tag)
    duplicate: bool = False  # True: this command_id was already done; nothing was appended now


_encode = msgspec.msgpack.Encoder().encode  # the same bytes as msgspec.msgpack.encode, reused


def payload_hash(command: cmd.Command) -> bytes:
    """Every field, envelope included: a re-sent command must match its first sending."""
    return hashlib.sha256(_encode(command)).digest()


def command_record(
    command: cmd.Command, customer_id: UUID, new_events: Sequence[CustomerEvent]
) -> CommandRecord | None:
    """The idempotency record stored with a command's events (None without a command_id)."""
    if command.command_id is None:
        return None
    version = new_events[-1].originator_version
    return CommandRecord(
        command.command_id, payload_hash(command), customer_id, version, len(new_events)
    )
