"""What running a command returns, and what makes two commands "the same" for idempotency."""

from __future__ import annotations

import hashlib
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd


class CommandResult(msgspec.Struct, frozen=True):
    customer_id: UUID
    version: int
    events: int  # how many events the command appended (0 for a no-op such as an unchanged tag)
    duplicate: bool = False  # True: this command_id was already done; nothing was appended now


def payload_hash(command: cmd.Command) -> bytes:
    """Every field, envelope included: a re-sent command must match its first sending."""
    return hashlib.sha256(msgspec.msgpack.encode(command)).digest()
