"""The command path's cache of customer states, and per-customer locks.

Deciding is pure, so the command path needs no defensive copy of the state it decides on (the
library's cache deep-copies on every load: half the time of a command, measured). Events are
applied to the cached state only after they were saved; anything else evicts the entry. A stale
entry (another process wrote meanwhile) is harmless: the save fails on the stream version and the
command is retried from a fresh load. Commands on one customer in one process are serialised by a
striped lock, which also spares them pointless version collisions.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Final
from uuid import UUID

from crm_es.domain.customer import Customer
from crm_es.domain.errors import CrmError

DEFAULT_MAXSIZE: Final = 10_000
CACHE_SIZE_SETTING: Final = "CRM_ES_CACHE_SIZE"
STRIPES: Final = 64


def configured_cache_size(size: int | None = None) -> int:
    """``size``, else ``$CRM_ES_CACHE_SIZE``, else 10,000 customers.

    A bulk import that visits more customers than the cache holds, in an order that cycles
    through them, reloads every customer from the store on every visit (~100x slower per
    purchase, measured): size the cache to the customers of the import (~3 KB each).
    """
    if size is None:
        text = os.environ.get(CACHE_SIZE_SETTING, "")
        try:
            size = int(text) if text.strip() else DEFAULT_MAXSIZE
        except ValueError:
            msg = f"{CACHE_SIZE_SETTING} must be a whole number of customers, not {text!r}"
            raise CrmError(msg) from None
    if size < 0:
        msg = f"cache size must not be negative, not {size}"
        raise CrmError(msg)
    return size


class CustomerCache:
    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self.maxsize = maxsize
        # Keyed by ``UUID.int``: a UUID's own hash is a Python-level method (bulk paths look
        # states up several times per command).
        # A plain dict kept in least-recently-used order (a use moves the key to the end by
        # popping and inserting it): cheaper per operation than an OrderedDict, which the bulk
        # path pays for every customer of every chunk.
        self._entries: dict[int, Customer] = {}
        self._guard = threading.Lock()
        # Re-entrant: a bulk chunk that holds its customers' locks may fall back to running its
        # commands one by one, which take the same locks again.
        self._locks = [threading.RLock() for _ in range(STRIPES)]

    def lock(self, customer_id: UUID) -> threading.RLock:
        """The lock to hold while deciding and saving a command on ``customer_id``."""
        return self._locks[customer_id.int % STRIPES]

    @contextmanager
    def locks(self, customer_ids: Iterable[UUID | int]) -> Iterator[None]:
        """Hold the locks of several customers (UUIDs or their ``int``), always taken in
        stripe order (no deadlock)."""
        stripes = sorted({(c if isinstance(c, int) else c.int) % STRIPES for c in customer_ids})
        with ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._locks[stripe])
            yield

    def get(self, customer_id: UUID) -> Customer | None:
        with self._guard:
            customer = self._entries.pop(customer_id.int, None)
            if customer is not None:
                self._entries[customer_id.int] = customer
            return customer

    def take_many(self, keys: Iterable[int]) -> dict[int, Customer]:
        """Remove and return the cached states of these customers (by ``UUID.int``): a bulk
        chunk owns them until its save commits, then puts them back."""
        with self._guard:
            pop = self._entries.pop
            taken = {key: pop(key, None) for key in keys}
        return {key: state for key, state in taken.items() if state is not None}

    def put_many(self, customers: Iterable[Customer]) -> None:
        if self.maxsize <= 0:
            return
        with self._guard:
            entries = self._entries
            for customer in customers:
                key = customer.id.int
                present = entries.pop(key, None)
                # A bulk chunk hands its states back after its commit; a command in another
                # thread may have cached a later version meanwhile: keep the later one.
                newer = present is not None and present.version > customer.version
                entries[key] = present if newer and present is not None else customer
            self._trim(self.maxsize)

    def put(self, customer: Customer) -> None:
        self.put_many((customer,))

    @contextmanager
    def resized(self, maxsize: int) -> Iterator[None]:
        """Hold up to ``maxsize`` states for a while (a bulk import), then trim back."""
        previous = self.maxsize
        self.maxsize = max(previous, maxsize)
        try:
            yield
        finally:
            with self._guard:
                self.maxsize = previous
                self._trim(previous)

    def _trim(self, maxsize: int) -> None:
        """Drop the least recently used entries (the first in the dict) beyond ``maxsize``."""
        excess = len(self._entries) - maxsize
        if excess > 0:
            for key in list(itertools.islice(self._entries, excess)):
                del self._entries[key]

    def evict(self, customer_id: UUID) -> None:
        with self._guard:
            self._entries.pop(customer_id.int, None)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
