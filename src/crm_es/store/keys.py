"""Per-customer data keys: where they live, wrapped by the store's master key, and their erasure.

Each customer's personal fields are encrypted with a 256-bit key of that customer alone (see
:mod:`crm_es.store.personal_data`). The keys live in ``crm_customer_keys``, apart from the
events, and only ever wrapped (AES-GCM, the customer id as associated data) by a key derived from
the master key, which is kept outside the store (:mod:`crm_es.store.secrets`): a copy of the
database decrypts nothing. Rows written by older versions with the key in clear (``k1:``) are
wrapped once, the first time such a store is opened (:meth:`SqlKeyStore.wrap_clear_keys`);
after that a clear key is refused: it can only have been planted by someone writing to the
database, who would then know the key of everything encrypted with it.

Erasure deletes the key: the row becomes a tombstone (no key material, the time of the erasure),
so nobody can silently mint a new key for an erased customer, and the freed bytes are wiped: on
SQLite the key table runs with ``secure_delete`` and the WAL is truncated; on PostgreSQL the
table is rewritten (``VACUUM FULL``) after the erasure commits, so the old row version leaves
the table's pages. Backups, WAL archives and replicas taken before keep the wrapped key until
they expire: the master key is what protects them (docs/guarantees.md).

On PostgreSQL with the roles of ``crm-es roles init`` (:mod:`crm_es.store.pg_roles`), a session
whose role may not select ``key_material`` reaches the keys only through the owner's functions,
which check the caller's role and log each access in ``crm_key_reads`` in the same
transaction: :data:`READ_KEY_FUNCTION`, :data:`CREATE_KEY_FUNCTION`, and
:data:`ERASE_KEYS_FUNCTION` (privacy officers and admins only; it also deletes the erased
customers' read-model rows and leaves the wipe of the freed bytes to the owner's
``crm-es maintain``, since only the owner may rewrite a table).

Plugging in a KMS: implement :class:`KeyStore` (or a :class:`KeyWrapper` whose ``wrap`` and
``unwrap`` call the KMS) and pass it as ``CRM(url, key_store=...)``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_es.domain.errors import CustomerErased, PersonalDataUnreadable
from crm_es.store.database import TEXT, Database
from crm_es.store.url import StoreConfig
from crm_es.store.wipe import wipe

KEY_TABLE: Final = "crm_customer_keys"
# The functions of ``crm-es roles init`` (see the module doc and :mod:`crm_es.store.pg_roles`).
READ_KEY_FUNCTION: Final = "crm_customer_key"
CREATE_KEY_FUNCTION: Final = "crm_create_customer_key"
ERASE_KEYS_FUNCTION: Final = "crm_erase_customer_keys"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_RAW, _WRAPPED = "k1:", "w1:"


class KeyStore(Protocol):
    """Where per-customer keys live. ``None`` from ``get`` means: no key, or erased."""

    def get(self, customer_id: UUID) -> bytes | None: ...

    def create(self, customer_id: UUID) -> bytes:
        """The customer's key, created if missing (safe under concurrency: one key wins).
        Raises :class:`CustomerErased` when the key was deleted."""
        ...

    def delete(self, customer_id: UUID) -> bool:
        """Destroy the key for good; True if a key existed until now."""
        ...

    def delete_many(self, customer_ids: Sequence[UUID]) -> int:
        """Destroy several keys for good; how many existed until now."""
        ...

    def key_status(self) -> dict[UUID, bool]:
        """Every customer the store has a key record of: True while its key exists, False
        once erased (the audit checks these against the erasures in the history)."""
        ...

    def put(self, customer_id: UUID, key: bytes) -> None:
        """Restore a key (audit import); raises ValueError if a different key exists."""
        ...

    def is_erased(self, customer_id: UUID) -> bool:
        """True once ``delete`` ran for this customer (the key is gone for good)."""
        ...

    def close(self) -> None: ...


class KeyWrapper(Protocol):
    """Envelope encryption: wraps each data key with a key-encryption key held elsewhere."""

    def wrap(self, customer_id: UUID, key: bytes) -> bytes: ...

    def unwrap(self, customer_id: UUID, wrapped: bytes) -> bytes: ...


class AesKeyWrapper:
    """Wraps data keys with AES-GCM under a key-encryption key (derived from the master key)."""

    def __init__(self, wrap_key: bytes) -> None:
        self._aead = AESGCM(wrap_key)

    def wrap(self, customer_id: UUID, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, customer_id.bytes)

    def unwrap(self, customer_id: UUID, wrapped: bytes) -> bytes:
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, customer_id.bytes)
        except (InvalidTag, ValueError):  # ValueError: too short to be a wrapped key at all
            why = "the master key does not unwrap its key (altered or planted in the key table)"
            raise PersonalDataUnreadable(customer_id, why) from None


class SqlKeyStore:
    """Keys in table ``crm_customer_keys`` of the store itself (SQLite or PostgreSQL), always
    wrapped by ``wrapper``."""

    def __init__(self, config: StoreConfig, wrapper: KeyWrapper) -> None:
        self.config = config
        self.db = Database(config)
        self.wrapper = wrapper
        with self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (customer_id {TEXT} PRIMARY KEY, "
                f"key_material {TEXT}, created_at {TEXT} NOT NULL, erased_at {TEXT})"
            )
            # Asked of the database, not of a setting anyone could write: may this role read
            # key material itself (the owner may), or only through the functions?
            self.through_functions = (
                tx.postgres
                and not tx.query(
                    "SELECT has_column_privilege(?, 'key_material', 'SELECT')", (KEY_TABLE,)
                )[0][0]
            )

    def _encode(self, customer_id: UUID, key: bytes) -> str:
        return _WRAPPED + base64.b64encode(self.wrapper.wrap(customer_id, key)).decode()

    def _decode(self, customer_id: UUID, material: str) -> bytes:
        if not material.startswith(_WRAPPED):
            why = "its key is not wrapped by this store (written behind the store's back)"
            raise PersonalDataUnreadable(customer_id, why)
        return self.wrapper.unwrap(customer_id, base64.b64decode(material[3:]))

    def wrap_clear_keys(self) -> int:
        """Wrap the keys an older version stored in clear (``k1:``); how many there were. Run
        once per store, when it is first opened by a version that wraps keys (by its owner:
        ``roles init`` refuses a store that was not)."""
        if self.through_functions:
            return 0
        with self.db.transaction() as tx:
            rows = tx.query(
                f"SELECT customer_id, key_material FROM {KEY_TABLE} WHERE key_material LIKE ?",
                (_RAW + "%",),
            )
            for cid, material in rows:
                customer_id = UUID(str(cid))
                key = base64.b64decode(str(material)[len(_RAW) :])
                tx.execute(
                    f"UPDATE {KEY_TABLE} SET key_material = ? WHERE customer_id = ?",
                    (self._encode(customer_id, key), str(cid)),
                )
        if rows:
            self._wipe()  # the clear keys leave the files as erased keys do
        return len(rows)

    def unwraps(self, customer_id: UUID, material: str) -> bool:
        """Whether ``material`` is a key this store wrapped for this customer."""
        try:
            self._decode(customer_id, material)
        except (PersonalDataUnreadable, ValueError):
            return False
        return True

    def _material(self, customer_id: UUID) -> list[tuple[object, ...]]:
        if self.through_functions:  # it writes the key-read log: a write transaction
            with self.db.transaction() as tx:
                return tx.query(f"SELECT {READ_KEY_FUNCTION}(?, ?)", (str(customer_id), "decrypt"))
        with self.db.reading() as tx:
            return tx.query(
                f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id),)
            )

    def get(self, customer_id: UUID) -> bytes | None:
        rows = self._material(customer_id)
        if not rows or rows[0][0] is None:
            return None
        return self._decode(customer_id, str(rows[0][0]))

    def create(self, customer_id: UUID) -> bytes:
        material = self._encode(customer_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8))
        rows = self._insert(customer_id, material, "encrypt")
        if rows[0][0] is None:
            raise CustomerErased(customer_id, "store personal data: its key has been deleted")
        return self._decode(customer_id, str(rows[0][0]))

    def _insert(self, customer_id: UUID, material: str, purpose: str) -> list[tuple[object, ...]]:
        """Store ``material`` unless the customer has a key row; the row's material now."""
        with self.db.transaction() as tx:
            if self.through_functions:
                return tx.query(
                    f"SELECT {CREATE_KEY_FUNCTION}(?, ?, ?)", (str(customer_id), material, purpose)
                )
            tx.execute(
                f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id) DO NOTHING",
                (str(customer_id), material, _now()),
            )
            return tx.query(
                f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id),)
            )

    def delete(self, customer_id: UUID) -> bool:
        return self.delete_many([customer_id]) == 1

    def delete_many(self, customer_ids: Sequence[UUID]) -> int:
        """Destroy these customers' keys for good (tombstones remain); how many existed. The
        freed bytes are wiped once, after all of them (see the module doc)."""
        if self.through_functions:
            with self.db.transaction() as tx:
                ids = [str(c) for c in customer_ids]
                return int(tx.query(f"SELECT {ERASE_KEYS_FUNCTION}(?, ?)", (ids, "erasure"))[0][0])
        existed = 0
        with self.db.transaction() as tx:
            if not tx.postgres:
                tx.execute("PRAGMA secure_delete = ON")  # overwrite the freed bytes with zeros
            for customer_id in customer_ids:
                rows = tx.query(
                    f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?" + tx.for_update(),
                    (str(customer_id),),
                )
                now = _now()
                tx.execute(
                    f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at, erased_at) "
                    "VALUES (?, NULL, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET "
                    f"key_material = NULL, erased_at = COALESCE({KEY_TABLE}.erased_at, ?)",
                    (str(customer_id), now, now, now),
                )
                existed += bool(rows) and rows[0][0] is not None
        if existed:
            self._wipe()
        return existed

    def _wipe(self) -> None:
        """Remove the old row versions that still hold deleted keys from the files (VACUUM
        alone leaves a dead row's bytes in the page's free space when nothing moves over them,
        checked with pageinspect; a rewrite leaves no old page behind)."""
        wipe(self.db, [KEY_TABLE])

    def put(self, customer_id: UUID, key: bytes) -> None:
        rows = self._insert(customer_id, self._encode(customer_id, key), "restore")
        if rows[0][0] is None or self._decode(customer_id, str(rows[0][0])) != key:
            msg = f"customer {customer_id} already has a different (or erased) key in this store"
            raise ValueError(msg)

    def is_erased(self, customer_id: UUID) -> bool:
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT erased_at FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id),)
            )
        return bool(rows) and rows[0][0] is not None

    def key_status(self) -> dict[UUID, bool]:
        """Every customer with a key row: True while its key exists, False once erased."""
        # A role that may not read key material sees the tombstones' erasure times instead.
        column = "erased_at IS NULL" if self.through_functions else "key_material IS NOT NULL"
        with self.db.reading() as tx:
            rows = tx.query(f"SELECT customer_id, {column} FROM {KEY_TABLE}")
        return {UUID(str(cid)): bool(present) for cid, present in rows}

    def close(self) -> None:
        self.db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
