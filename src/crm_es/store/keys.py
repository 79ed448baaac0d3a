"""Personal data: per-customer keys, field encryption, crypto-shredding.

Every personal field (an event's ``PII_FIELDS``: name, email, phone, birthday and free text such as
contact summaries, complaint descriptions, survey comments, care notes) is stored as a token
``pii1:<base64(nonce | AES-GCM ciphertext | tag)>`` encrypted with a 256-bit key of that customer
alone, a random 96-bit nonce per value, and the customer id as associated data (a token copied to
another customer does not decrypt). Keys live in ``crm_customer_keys``, apart from the events.

Erasure deletes the key (a tombstone row remains, so nobody can silently mint a new key for an
erased customer): every token of that customer then reads as ``[erased]``, while the stored bytes,
and so the hash chain, stay exactly as they were.

Plugging in a KMS. :class:`KeyStore` is the seam. Two ways:

* Envelope encryption (recommended): keep :class:`SqlKeyStore` and give it a :class:`KeyWrapper`
  whose ``wrap``/``unwrap`` call the KMS (AWS KMS ``Encrypt``/``Decrypt``, Vault transit, a cloud
  HSM) with a key-encryption key that never leaves it. The table then holds only wrapped keys: a
  copy of the database is useless without the KMS. :class:`AesKeyWrapper` does the same with a
  local master key, set with ``PERSONAL_DATA_MASTER_KEY`` (base64 of 32 bytes) in the environment.
* A KMS-native store: implement :class:`KeyStore` (``get``/``create``/``delete``/``put``/
  ``close``) over the KMS and pass it as ``CRM(url, key_store=...)``.

Caching. Keys are cached in memory (LRU, ``cache_size`` entries, each trusted for ``cache_ttl``
seconds) because a lookup per decrypted field would dominate every read. Deleting a key evicts it
from every cache *in this process* (all CRM instances). Another process keeps serving its cached
copy for at most ``cache_ttl`` seconds (60 by default): run erasure-sensitive readers with
``cache_ttl=0`` or restart them if that window matters.

Shredding caveats. On SQLite the key table runs with ``secure_delete`` and the WAL is truncated
after a deletion, so the key bytes leave the files. On PostgreSQL the old row version stays on disk
until (auto)vacuum, and WAL archives and backups keep it for their retention period: where that
matters, use a KMS wrapper, whose master key is what protects those copies.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from contextlib import closing
from datetime import UTC, datetime
from typing import Final, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_es.domain.errors import CrmError, CustomerErased, PersonalDataUnreadable
from crm_es.domain.values import ERASED
from crm_es.store.database import TEXT, Database
from crm_es.store.url import StoreConfig, ensure_postgres_schema

KEY_TABLE: Final = "crm_customer_keys"
TOKEN_PREFIX: Final = "pii1:"
_PREFIX_LENGTH: Final = len(TOKEN_PREFIX)
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
MASTER_KEY_SETTING: Final = "PERSONAL_DATA_MASTER_KEY"
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
    """Wraps data keys with a local AES-GCM master key (stand-in for a KMS)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) not in (16, 24, 32):
            msg = f"{MASTER_KEY_SETTING} must be 16, 24 or 32 bytes (base64), got {len(master_key)}"
            raise ValueError(msg)
        self._aead = AESGCM(master_key)

    def wrap(self, customer_id: UUID, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, customer_id.bytes)

    def unwrap(self, customer_id: UUID, wrapped: bytes) -> bytes:
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, customer_id.bytes)
        except InvalidTag:
            why = "the master key does not unwrap its key"
            raise PersonalDataUnreadable(customer_id, why) from None


class SqlKeyStore:
    """Keys in table ``crm_customer_keys`` of the store itself (SQLite or PostgreSQL)."""

    def __init__(
        self, config: StoreConfig, wrapper: KeyWrapper | None = None, *, create_schema: bool = True
    ) -> None:
        self.config = config
        if create_schema:  # the CRM has done it already for its own store
            ensure_postgres_schema(config)
        self.db = Database(config)
        self.wrapper = wrapper
        with self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (customer_id {TEXT} PRIMARY KEY, "
                f"key_material {TEXT}, created_at {TEXT} NOT NULL, erased_at {TEXT})"
            )

    def _encode(self, customer_id: UUID, key: bytes) -> str:
        if self.wrapper is None:
            return _RAW + base64.b64encode(key).decode()
        return _WRAPPED + base64.b64encode(self.wrapper.wrap(customer_id, key)).decode()

    def _decode(self, customer_id: UUID, material: str) -> bytes:
        blob = base64.b64decode(material[3:])
        if material.startswith(_RAW):
            return blob
        if self.wrapper is None:
            why = f"its key is wrapped; set {MASTER_KEY_SETTING} (or pass the KMS key store)"
            raise PersonalDataUnreadable(customer_id, why)
        return self.wrapper.unwrap(customer_id, blob)

    def _material(self, customer_id: UUID) -> list[tuple[object, ...]]:
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
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id) DO NOTHING",
                (str(customer_id), material, _now()),
            )
            rows = tx.query(
                f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id),)
            )
        if rows[0][0] is None:
            raise CustomerErased(customer_id, "store personal data: its key has been deleted")
        return self._decode(customer_id, str(rows[0][0]))

    def delete(self, customer_id: UUID) -> bool:
        with self.db.transaction() as tx:
            if not tx.postgres:
                tx.execute("PRAGMA secure_delete = ON")  # overwrite the freed bytes with zeros
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
        existed = bool(rows) and rows[0][0] is not None
        if existed and not self.db.postgres:
            self._truncate_wal()
        return existed

    def _truncate_wal(self) -> None:
        """Best effort: drop WAL frames that still hold the deleted key."""
        name = self.config.env["SQLITE_DBNAME"]
        if name.startswith("file:"):
            return  # in memory
        with closing(sqlite3.connect(name, timeout=5)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def put(self, customer_id: UUID, key: bytes) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id) DO NOTHING",
                (str(customer_id), self._encode(customer_id, key), _now()),
            )
        if self.get(customer_id) != key:
            msg = f"customer {customer_id} already has a different (or erased) key in this store"
            raise ValueError(msg)

    def is_erased(self, customer_id: UUID) -> bool:
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT erased_at FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id),)
            )
        return bool(rows) and rows[0][0] is not None

    def close(self) -> None:
        self.db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def key_store_from_env(config: StoreConfig, master_key_b64: str | None) -> SqlKeyStore:
    """The default key store: the store's own table, wrapped when a master key is configured."""
    wrapper = None
    if master_key_b64:
        try:
            wrapper = AesKeyWrapper(base64.b64decode(master_key_b64, validate=True))
        except (ValueError, binascii.Error):
            # Never echo the value: it is a secret.
            msg = f"{MASTER_KEY_SETTING} must be the base64 of a 16, 24 or 32-byte key"
            raise CrmError(msg) from None
    return SqlKeyStore(config, wrapper, create_schema=False)


class _KeyCache:
    """LRU of AES-GCM objects (or None = no key) with a time-to-live per entry.

    ``epoch`` counts evictions: a lookup that started before an eviction must not put back what
    it read (it may be the key being deleted).
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize, self.ttl = maxsize, ttl
        self._entries: OrderedDict[UUID, tuple[float, AESGCM | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.epoch = 0

    def get(self, customer_id: UUID) -> tuple[bool, AESGCM | None]:
        with self._lock:
            entry = self._entries.get(customer_id)
            if entry is None or entry[0] < time.monotonic():
                return False, None
            self._entries.move_to_end(customer_id)
            return True, entry[1]

    def put(self, customer_id: UUID, aead: AESGCM | None, epoch: int) -> None:
        if self.maxsize <= 0 or self.ttl <= 0:
            return
        with self._lock:
            if epoch != self.epoch:
                return
            self._entries[customer_id] = (time.monotonic() + self.ttl, aead)
            self._entries.move_to_end(customer_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def evict(self, customer_id: UUID) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.pop(customer_id, None)


# Every live cache of this process: a deletion evicts the key from all of them.
_CACHES: weakref.WeakSet[_KeyCache] = weakref.WeakSet()


class CustomerKeyCipher:
    """The mapper's :class:`~crm_es.store.codec.PersonalDataCipher`: one key per customer."""

    def __init__(self, keys: KeyStore, cache_size: int = 10_000, cache_ttl: float = 60.0) -> None:
        self.keys = keys
        self._cache = _KeyCache(cache_size, cache_ttl)
        # (customer id as int, cache epoch, good until, key, the AAD: the customer id's bytes)
        self._last: tuple[int, int, float, AESGCM | None, bytes] | None = None
        _CACHES.add(self._cache)

    def _aead(self, customer_id: UUID, *, create: bool) -> tuple[AESGCM | None, bytes]:
        """The customer's key, and the AAD its values are sealed with (the id's bytes)."""
        # Streams are read customer by customer: the last key answers without the cache's lock,
        # for as long as no key was evicted meanwhile and its time-to-live has not run out.
        # Ids compare as ints and the AAD is kept: UUID's ``==`` and ``bytes`` are Python-level,
        # ~0.4 µs of every field a long history decrypts (measured).
        last = self._last
        if (
            last is not None
            and last[0] == customer_id.int
            and last[1] == self._cache.epoch
            and last[2] > time.monotonic()
            and (last[3] is not None or not create)
        ):
            return last[3], last[4]
        # The epoch from before the lookup: an erasure landing during it must end this memo too.
        epoch = self._cache.epoch
        aead = self._aead_from_cache(customer_id, create=create)
        aad = customer_id.bytes
        self._last = (customer_id.int, epoch, time.monotonic() + 1.0, aead, aad)
        return aead, aad

    def _aead_from_cache(self, customer_id: UUID, *, create: bool) -> AESGCM | None:
        hit, aead = self._cache.get(customer_id)
        if hit and (aead is not None or not create):
            return aead
        epoch = self._cache.epoch
        # One round trip either way: writers get-or-create, readers only read.
        key = self.keys.create(customer_id) if create else self.keys.get(customer_id)
        aead = None if key is None else AESGCM(key)
        self._cache.put(customer_id, aead, epoch)
        return aead

    def encrypt(self, customer_id: UUID, plaintext: str) -> str:
        if plaintext == ERASED:
            return plaintext  # what an erased value reads as carries no personal data
        aead, aad = self._aead(customer_id, create=True)
        assert aead is not None
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode(), aad)
        return TOKEN_PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, customer_id: UUID, token: str) -> str:
        if not token.startswith(TOKEN_PREFIX):
            return token  # "[erased]", or a value written before encryption was switched on
        aead, aad = self._aead(customer_id, create=False)
        if aead is None:
            return ERASED
        # binascii directly: base64.b64decode's argument checks cost as much as the AES-GCM.
        raw = binascii.a2b_base64(token[_PREFIX_LENGTH:])
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except InvalidTag:
            raise PersonalDataUnreadable(customer_id, "wrong key or altered value") from None

    def key(self, customer_id: UUID) -> bytes | None:
        """The customer's raw key, for an audit export (None if none or erased)."""
        return self.keys.get(customer_id)

    def is_erased(self, customer_id: UUID) -> bool:
        return self.keys.is_erased(customer_id)

    def restore(self, customer_id: UUID, key: bytes | None, erased: bool) -> None:
        """Recreate a key (or its tombstone) from an audit export."""
        if key is not None:
            self.keys.put(customer_id, key)
        elif erased:
            self.shred(customer_id)

    def shred(self, customer_id: UUID) -> bool:
        """Delete the customer's key and evict it from every cache of this process."""
        for cache in list(_CACHES):
            cache.evict(customer_id)
        existed = self.keys.delete(customer_id)
        for cache in list(_CACHES):
            cache.evict(customer_id)
        return existed

    def close(self) -> None:
        self.keys.close()


def is_token(value: object) -> bool:
    """True for an encrypted personal value as stored."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)
