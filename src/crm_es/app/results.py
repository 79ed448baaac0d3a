"""What running a command returns, and what makes two commands "the same" for idempotency.

A command re-sent with its ``command_id`` must be the same command: every field, envelope
included, hashed. The hash is keyed with a secret of the store (:mod:`crm_es.store.secrets`), so
a record of a command that held personal data (a phone number, a name) cannot be brute-forced
back to it, nor forged by someone writing to the database. Records written before hashes were
keyed (plain SHA-256) were sealed with the secret when the store was first opened by a version
that keys them (:data:`~crm_es.store.recorders.SEALED_PLAIN_HASH`); a plain hash found later was
planted, and matches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.store.recorders import (
    IMPORTED_HASH,
    KEYED_HASH,
    SEALED_PLAIN_HASH,
    CommandRecord,
    imported_hash,
    seal_plain_hash,
)


class CommandResult(msgspec.Struct, frozen=True, gc=False):
    customer_id: UUID
    version: int
    events: int  # how many events the command appended (0 for a no-op such as an unchanged tag)
    duplicate: bool = False  # True: this command_id was already done; nothing was appended now


_encoder = msgspec.msgpack.Encoder()


_FIXED_HEADER: dict[type[cmd.Command], bool] = {}


def _fixed_header(cls: type[cmd.Command]) -> bool:
    """Whether ``cls`` was written with a one-byte map header before ``on_behalf_of`` came: a
    struct with a field that may be left out (unset) gets a 16-bit header, and before, only
    classes with such fields of their own had one."""
    found = _FIXED_HEADER.get(cls)
    if found is None:
        found = _FIXED_HEADER[cls] = not any(
            f.default is msgspec.UNSET and f.name != "on_behalf_of"
            for f in msgspec.structs.fields(cls)
        )
    return found


def _encode(command: cmd.Command) -> bytes:
    """The command's msgpack bytes, exactly as hashed before ``on_behalf_of`` existed (when
    it is unset), so a command re-sent to a store of an earlier version matches its record."""
    body = _encoder.encode(command)
    if body[0] == 0xDE and body[1] == 0 and body[2] < 16 and _fixed_header(type(command)):
        return bytes((0x80 | body[2],)) + body[3:]
    return body


_KEYED: dict[bytes, hmac.HMAC] = {}


def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with ``key`` and fed nothing yet, made once per key: a copy of it
    hashes a message as ``hmac.digest`` does, without setting the key up again (OpenSSL
    fetching the digest and padding the key was over half of each call, measured)."""
    keyed = _KEYED.get(key)
    if keyed is None:
        if len(_KEYED) >= 16:  # a store has one key; tests open many stores
            _KEYED.clear()
        keyed = _KEYED[key] = hmac.new(key, digestmod=hashlib.sha256)
    return keyed


def payload_hash(command: cmd.Command, key: bytes) -> bytes:
    """Every field, envelope included, keyed: a re-sent command must match its first sending."""
    mac = _keyed(key).copy()
    mac.update(_encode(command))
    return KEYED_HASH + mac.digest()


def same_payload(stored: bytes, command: cmd.Command, key: bytes) -> bool:
    """Whether ``command`` is the one whose payload hash ``stored`` is."""
    if stored[:1] == IMPORTED_HASH:  # done in the store an audit import came from
        return command.command_id is not None and hmac.compare_digest(
            stored, imported_hash(command.command_id, key)
        )
    if stored[:1] == SEALED_PLAIN_HASH:  # a plain hash of an older version, sealed since
        plain = hashlib.sha256(_encode(command)).digest()
        return hmac.compare_digest(stored, seal_plain_hash(plain, key))
    return hmac.compare_digest(stored, payload_hash(command, key))


def command_record(
    command: cmd.Command, customer_id: UUID, version: int, events: int, key: bytes
) -> CommandRecord | None:
    """The idempotency record stored with a command's events, or alone for a command that
    changed nothing (``events`` 0); None without a command_id."""
    if command.command_id is None:
        return None
    return CommandRecord(
        command.command_id, payload_hash(command, key), customer_id, version, events
    )
