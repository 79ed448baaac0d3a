"""The survey topics a store accepts, kept in its settings (``crm-es settings survey-topics``).

Read on the write path of every survey answer that names a topic, so cached
(:mod:`crm_es.store.cached_setting`: a topic another process just added is accepted at once, one
it removed is refused within :data:`~crm_es.store.cached_setting.REFRESH_SECONDS`). Without a
stored list the store accepts :data:`~crm_es.domain.survey_topics.DEFAULT_SURVEY_TOPICS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from crm_es.domain.policy import require
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS, parse_topics
from crm_es.store.cached_setting import CachedSetting, one_per_store
from crm_es.store.settings import StoreSettings
from crm_es.store.store import HasStore, Store, store_of

SURVEY_TOPICS_SETTING: Final = "survey_topics"


def _stored_topics(text: str) -> tuple[str, ...]:
    return tuple(msgspec.json.decode(text, type=list[str]))


class SurveyTopics(CachedSetting[tuple[str, ...]]):
    """The store's survey topics: read, changed, and cached for the write path."""

    def __init__(
        self, settings: StoreSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(settings, SURVEY_TOPICS_SETTING, _stored_topics, DEFAULT_SURVEY_TOPICS,
                         clock)  # fmt: skip

    def accepting(self, topic: str) -> tuple[str, ...]:
        """The list to judge ``topic`` by: the cached one while it is fresh and holds the topic,
        else the stored one."""
        return self.fresh_or_current(lambda topics: topic in topics)

    def replace(self, topics: Iterable[str]) -> tuple[str, ...]:
        """Keep ``topics`` as the store's list (checked: codes, none twice); answers stored
        with a topic no longer listed keep it, and reports still show it."""
        return self.keep(msgspec.json.encode(list(parse_topics(topics))).decode())

    def reset(self) -> tuple[str, ...]:
        """Back to the default list."""
        return self.replace(DEFAULT_SURVEY_TOPICS)


def survey_topics(settings: StoreSettings) -> SurveyTopics:
    """The one :class:`SurveyTopics` of the store whose settings these are."""
    return one_per_store(SurveyTopics, settings)


def set_survey_topics(source: Store | HasStore, topics: Iterable[str] | None) -> tuple[str, ...]:
    """Keep ``topics`` (None: the default list) as the survey topics of the store of
    ``source``, whose principal must be allowed to change settings (an admin); the new list."""
    require(source, "change_settings")
    topics_of = survey_topics(store_of(source).settings)
    return topics_of.reset() if topics is None else topics_of.replace(topics)
