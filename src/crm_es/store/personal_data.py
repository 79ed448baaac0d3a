"""Personal fields encrypted with a key of their customer alone, and the keys cached for reading.

Every personal field (an event's ``PII_FIELDS``: name, email, phone, birthday and every free-text
field that may hold personal data) is stored as a token ``pii1:<base64(nonce | AES-GCM
ciphertext | tag)>`` encrypted with a 256-bit key of that customer alone
(:mod:`crm_es.store.keys`), a random 96-bit nonce per value, and the customer id as associated
data (a token copied to another customer does not decrypt). Once the key is erased, every token of
that customer reads as ``[erased]``, while the stored bytes, and so the hash chain, stay exactly
as they were.

Caching. Keys are cached in memory (LRU, ``cache_size`` entries, each trusted for ``cache_ttl``
seconds) because a lookup per decrypted field would dominate every read. Deleting a key evicts it
from every cache *in this process* (all CRM instances). Another process keeps serving its cached
copy for at most ``cache_ttl`` seconds (60 by default): run erasure-sensitive readers with
``cache_ttl=0`` or restart them if that window matters.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_es.domain.errors import PersonalDataUnreadable
from crm_es.domain.values import ERASED
from crm_es.store.keys import NONCE_BYTES, KeyStore

TOKEN_PREFIX: Final = "pii1:"
_PREFIX_LENGTH: Final = len(TOKEN_PREFIX)


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
    """The codec's :class:`~crm_es.store.codec.PersonalDataCipher`: one key per customer."""

    def __init__(
        self,
        keys: KeyStore,
        cache_size: int = 10_000,
        cache_ttl: float = 60.0,
        on_shred: Callable[[Sequence[UUID]], None] | None = None,
    ) -> None:
        """``on_shred``: called with the customers whose keys were just deleted (the store
        deletes what read models copied of their personal data)."""
        self.keys = keys
        self.on_shred = on_shred
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
        return self.shred_many([customer_id]) == 1

    def shred_many(self, customer_ids: Sequence[UUID]) -> int:
        """Delete these customers' keys (evicted from every cache of this process); how many
        existed. The bytes they leave are wiped once for all of them."""
        for cache in list(_CACHES):
            for customer_id in customer_ids:
                cache.evict(customer_id)
        existed = self.keys.delete_many(customer_ids)
        for cache in list(_CACHES):
            for customer_id in customer_ids:
                cache.evict(customer_id)
        if self.on_shred is not None and customer_ids:
            self.on_shred(customer_ids)
        return existed

    def close(self) -> None:
        self.keys.close()


def is_token(value: object) -> bool:
    """True for an encrypted personal value as stored."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)
