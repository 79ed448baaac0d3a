"""Slim views of stored events: only the fields read models read, decoded straight from msgpack.

Decoding a full domain event builds a UUID, enum members, line items and every envelope string;
read models need a handful of fields (measured: ~2.8 µs for a full ``PurchaseRecorded``, ~0.6 µs
for its slim view). For each event class a slim msgspec Struct is derived with the same field
names, minus ``UNREAD`` and the personal fields read models never keep, and with enum fields as
plain ``str`` (a ``StrEnum`` member and its value store the same text). A handler therefore reads
``event.amount`` from either form, and the engine falls back to the full event wherever the fast
path does not apply (compressed or enciphered bodies, bodies that need upcasting).
"""

from __future__ import annotations

import enum
import functools
import operator
import types
import typing
from typing import Any, Final

import msgspec

from crm_es.domain.events import CustomerEvent
from crm_es.store.codec import STORED_NAMES

# Fields of the envelope and payloads that no read model reads. A read model that starts reading
# one of them removes it here (the slim-versus-full test catches a field read but not decoded).
UNREAD: Final = frozenset(
    {"actor", "command_id", "correlation_id", "causation_id", "reason", "items", "draws"}
)
# Of the personal fields, read models keep only the birthday's month and day (care agenda),
# the tags (segments) and the keyed hashes of phone and email (contact index): decrypted as they
# are read, and dropped when the customer is erased.
KEPT_PERSONAL: Final = frozenset({"birthday", "added[]", "removed[]", "phone", "email"})


def _field(path: str) -> str:
    return path.split("[", 1)[0]


def kept_personal(cls: type[CustomerEvent]) -> tuple[str, ...]:
    """The personal paths of ``cls`` its slim view decodes (and the feed decrypts)."""
    return tuple(p for p in cls.PII_FIELDS if p in KEPT_PERSONAL)


def _plain(tp: Any) -> Any:
    """``tp`` with every ``StrEnum`` replaced by ``str`` (unions included)."""
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        return str
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, [_plain(arg) for arg in typing.get_args(tp)])
    return tp


def slim_fields(cls: type[CustomerEvent]) -> list[str]:
    """The fields of ``cls`` that its slim view decodes."""
    personal = {_field(p) for p in cls.PII_FIELDS}
    kept = {_field(p) for p in kept_personal(cls)}
    return [
        f.name
        for f in msgspec.structs.fields(cls)
        if f.name not in UNREAD and (f.name not in personal or f.name in kept)
    ]


@functools.cache
def slim_type(cls: type[CustomerEvent]) -> type[msgspec.Struct]:
    """A Struct decoding the read fields of ``cls`` from its stored msgpack body.

    Not frozen (the birthday is replaced by its plaintext after decoding) and not tracked by the
    garbage collector: it holds only strings, numbers, times, dates, lists of strings and a UUID.
    """
    keep = set(slim_fields(cls))
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        if f.name not in keep:
            continue
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, _plain(f.type), f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (f.name, _plain(f.type), msgspec.field(default_factory=f.default_factory))
            )
        else:
            fields.append((f.name, _plain(f.type)))
    # Decoded straight from the stored body: its keys as stored.
    slim = msgspec.defstruct(
        f"Slim{cls.__name__}", fields, kw_only=True, gc=False, rename=STORED_NAMES
    )
    slim.PII_FIELDS = kept_personal(cls)  # type: ignore[attr-defined]
    return slim


def slim_decoder(cls: type[CustomerEvent]) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(slim_type(cls))
