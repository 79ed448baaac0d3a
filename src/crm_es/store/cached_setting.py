"""A store setting read on the write path of a command, and so cached.

The vocabularies a store may change while it runs (its sales pipeline, its survey topics) are
kept in its settings table and consulted for every command that names one of their codes. The
cached value is used while it is fresh *and* knows the code: a code missing from it is looked
up again at once (one another process just added is accepted), and the cache is renewed after
:data:`REFRESH_SECONDS` in any case (one another process removed is refused within that time).
There is one object per opened store and setting (:func:`one_per_store`), so a change made in
this process is seen by its own write path at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Generic, TypeVar, cast

from crm_es.store.settings import StoreSettings

T = TypeVar("T")
S = TypeVar("S", bound="CachedSetting[Any]")
REFRESH_SECONDS: Final = 5.0


class CachedSetting(Generic[T]):
    """One setting of a store: parsed from its stored text, or ``default`` when none is kept."""

    def __init__(
        self,
        settings: StoreSettings,
        name: str,
        parse: Callable[[str], T],
        default: T,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.name, self.clock = settings, name, clock
        self._parse, self._default = parse, default
        self._lock = threading.Lock()
        self._cached: T | None = None
        self._read_at = 0.0

    def current(self) -> T:
        """The value as stored now (the default when none was set)."""
        text = self.settings.get(self.name)
        value = self._parse(text) if text else self._default
        with self._lock:
            self._cached, self._read_at = value, self.clock()
        return value

    def known_at(self, at: datetime) -> T:
        """The value as it stood at the recorded time ``at`` (the default when none was set by
        then): what a report known at ``at`` works with, then and forever."""
        text = self.settings.known_at(self.name, at)
        return self._parse(text) if text else self._default

    def fresh_or_current(self, knows: Callable[[T], bool]) -> T:
        """The cached value while it is fresh and ``knows`` what is asked, else the stored one."""
        with self._lock:
            cached, fresh = self._cached, self.clock() - self._read_at < REFRESH_SECONDS
        if cached is not None and fresh and knows(cached):
            return cached
        return self.current()

    def keep(self, text: str) -> T:
        """Store ``text`` (already checked by the caller) as the setting; the value now kept."""
        self.settings.put(self.name, text)
        return self.current()


_PER_STORE: Final[weakref.WeakKeyDictionary[StoreSettings, dict[object, object]]] = (
    weakref.WeakKeyDictionary()
)
_PER_STORE_LOCK: Final = threading.Lock()


def one_per_store(kind: Callable[[StoreSettings], S], settings: StoreSettings) -> S:
    """The one ``kind`` (a setting's class) of the store whose settings these are, made on
    first use."""
    with _PER_STORE_LOCK:
        of_store = _PER_STORE.setdefault(settings, {})
        found = of_store.get(kind)
        if found is None:
            found = of_store[kind] = kind(settings)
        return cast(S, found)
