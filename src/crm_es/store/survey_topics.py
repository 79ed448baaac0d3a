"""The survey topics a store accepts, kept in its settings (``crm-es settings survey-topics``).

The list is read on the write path of every survey answer that names a topic, so it is cached:
a topic missing from the cache is looked up again at once (a topic another process just added
is accepted), and the cache is renewed after :data:`REFRESH_SECONDS` in any case (a topic
another process removed is refused within that time). One object per opened store
(:func:`survey_topics`), so a change made in this process is seen by its write path at once.
Without a stored list the store accepts
:data:`~crm_es.domain.survey_topics.DEFAULT_SURVEY_TOPICS`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from crm_es.domain.policy import require
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS, parse_topics
from crm_es.store.settings import StoreSettings
from crm_es.store.store import HasStore, Store, store_of

SURVEY_TOPICS_SETTING: Final = "survey_topics"
REFRESH_SECONDS: Final = 5.0


class SurveyTopics:
    """The store's survey topics: read, changed, and cached for the write path."""

    def __init__(
        self, settings: StoreSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings, self.clock = settings, clock
        self._lock = threading.Lock()
        self._cached: tuple[str, ...] | None = None
        self._read_at = 0.0

    def current(self) -> tuple[str, ...]:
        """The list as stored now (the default list when none was set)."""
        value = self.settings.get(SURVEY_TOPICS_SETTING)
        topics = DEFAULT_SURVEY_TOPICS
        if value:
            topics = tuple(msgspec.json.decode(value, type=list[str]))
        with self._lock:
            self._cached, self._read_at = topics, self.clock()
        return topics

    def accepting(self, topic: str) -> tuple[str, ...]:
        """The list to judge ``topic`` by: the cached one while it is fresh and holds the topic,
        else the stored one."""
        with self._lock:
            cached, fresh = self._cached, self.clock() - self._read_at < REFRESH_SECONDS
        if cached is not None and fresh and topic in cached:
            return cached
        return self.current()

    def replace(self, topics: Iterable[str]) -> tuple[str, ...]:
        """Keep ``topics`` as the store's list (checked: codes, none twice); answers stored
        with a topic no longer listed keep it, and reports still show it."""
        checked = parse_topics(topics)
        self.settings.put(SURVEY_TOPICS_SETTING, msgspec.json.encode(list(checked)).decode())
        return self.current()

    def reset(self) -> tuple[str, ...]:
        """Back to the default list."""
        return self.replace(DEFAULT_SURVEY_TOPICS)


_PER_STORE: Final[weakref.WeakKeyDictionary[StoreSettings, SurveyTopics]] = (
    weakref.WeakKeyDictionary()
)
_PER_STORE_LOCK: Final = threading.Lock()


def survey_topics(settings: StoreSettings) -> SurveyTopics:
    """The one :class:`SurveyTopics` of the store whose settings these are."""
    with _PER_STORE_LOCK:
        found = _PER_STORE.get(settings)
        if found is None:
            found = _PER_STORE[settings] = SurveyTopics(settings)
        return found


def set_survey_topics(source: Store | HasStore, topics: Iterable[str] | None) -> tuple[str, ...]:
    """Keep ``topics`` (None: the default list) as the survey topics of the store of
    ``source``, whose principal must be allowed to change settings (an admin); the new list."""
    require(source, "change_settings")
    topics_of = survey_topics(store_of(source).settings)
    return topics_of.reset() if topics is None else topics_of.replace(topics)
