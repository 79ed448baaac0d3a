"""Read model ``contact_index``: a blind index of each customer's phone and email (客户识别).

A call centre's first question, "who is calling?", is a lookup by phone or email. The index holds,
per customer, the keyed hash of each value its registration or a profile update gave (see
:mod:`crm_es.domain.contact_keys`: normalised, then HMAC-SHA256 with a key derived from the
master key, which is outside the store), never the value. A copy of the database cannot be
searched for a known phone, and a hash found in it cannot be reversed without the master key.

Every change is a fact with both times, never overwritten (a cleared value is a fact without a
hash), so "who held this phone as of D, known at T" is answered the same forever and a changed
phone stops matching the old number from its change on. A hash is still derived from personal
data: the table is personal, and an erasure deletes the customer's rows wherever it comes from
(:mod:`crm_es.store.wipe`), and here too when the projection meets the erasure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Final

import msgspec

from crm_es.domain import events as ev
from crm_es.domain.contact_keys import CONTACT_KINDS, ContactKind, stored_hash
from crm_es.domain.values import ERASED
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT

if TYPE_CHECKING:
    from crm_es.store.store import Store

_FACT: Final = (
    "INSERT INTO {contact_hashes} (customer_id, version, kind, hash, occurred_at, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class UnboundReadModel(RuntimeError):
    """A read model that needs its store's secret was run before the engine bound it."""


class ContactIndex(ReadModel):
    name = "contact_index"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "contact_hashes": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"hash {TEXT}, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {"contact_hashes": "customer_id, version, kind"}
    indexes: ClassVar[dict[str, str]] = {"contacts_by_hash": "{contact_hashes} (kind, hash)"}
    personal_tables: ClassVar[frozenset[str]] = frozenset({"contact_hashes"})

    def __init__(self) -> None:
        self._key: bytes | None = None

    def bind(self, store: Store) -> None:
        self._key = store.secrets.contact_index_key

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.CustomerRegistered: self._registered,
            ev.ProfileUpdated: self._profile_updated,
            ev.PersonalDataErased: self._erased,
        }

    def _fact(
        self, e: ev.CustomerEvent, kind: ContactKind, value: str | None, row: RowKeys
    ) -> Statement:
        if self._key is None:
            raise UnboundReadModel("contact_index hashes with its store's key: bind it first")
        # A value read after its key was erased reads "[erased]": nothing of the customer's.
        digest = None if value == ERASED else stored_hash(self._key, kind, value)
        times = (row.occurred_at, row.recorded_at)
        return (_FACT, (row.customer_id, e.originator_version, kind, digest, *times))

    def _registered(self, e: ev.CustomerRegistered, row: RowKeys) -> list[Statement]:
        return [
            self._fact(e, kind, value, row)
            for kind in CONTACT_KINDS
            if (value := getattr(e, kind)) is not None
        ]

    def _profile_updated(self, e: ev.ProfileUpdated, row: RowKeys) -> list[Statement]:
        return [
            self._fact(e, kind, value, row)
            for kind in CONTACT_KINDS
            if (value := getattr(e, kind)) is not msgspec.UNSET
        ]

    @staticmethod
    def _erased(e: ev.PersonalDataErased, row: RowKeys) -> list[Statement]:
        return [("DELETE FROM {contact_hashes} WHERE customer_id = ?", (row.customer_id,))]
