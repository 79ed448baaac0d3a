"""The sales pipeline a store works with, kept in its settings (``crm-es settings pipeline``).

Read on the write path of every command that opens an opportunity or moves it to a stage, so it
is cached: a stage missing from the cache is looked up again at once (a stage another process
just added is accepted), and the cache is renewed after :data:`REFRESH_SECONDS` in any case (a
stage another process removed is refused within that time; a new first stage or probability is
used within that time). One object per opened store (:func:`pipeline_setting`), so a change made
in this process is seen by its write path at once. Without a stored pipeline the store works
with :data:`~crm_es.domain.pipeline.DEFAULT_PIPELINE`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Final

from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline, parse_pipeline, pipeline_json
from crm_es.domain.policy import require
from crm_es.store.settings import StoreSettings
from crm_es.store.store import HasStore, Store, store_of

PIPELINE_SETTING: Final = "pipeline"
REFRESH_SECONDS: Final = 5.0


class PipelineSetting:
    """The store's pipeline: read, changed, and cached for the write path."""

    def __init__(
        self, settings: StoreSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings, self.clock = settings, clock
        self._lock = threading.Lock()
        self._cached: Pipeline | None = None
        self._read_at = 0.0

    def current(self) -> Pipeline:
        """The pipeline as stored now (the default one when none was set)."""
        value = self.settings.get(PIPELINE_SETTING)
        pipeline = parse_pipeline(value) if value else DEFAULT_PIPELINE
        with self._lock:
            self._cached, self._read_at = pipeline, self.clock()
        return pipeline

    def accepting(self, stage: str | None) -> Pipeline:
        """The pipeline to judge a move to ``stage`` by (None: to the first stage): the cached
        one while it is fresh and lists the stage, else the stored one."""
        with self._lock:
            cached, fresh = self._cached, self.clock() - self._read_at < REFRESH_SECONDS
        if cached is not None and fresh and (stage is None or cached.stage(stage) is not None):
            return cached
        return self.current()

    def replace(self, pipeline: Pipeline | str | bytes) -> Pipeline:
        """Keep ``pipeline`` (or its JSON form, checked) as the store's. Opportunities at a
        stage no longer listed keep it, and the report still shows it."""
        # A Pipeline built in Python skipped the schema's constraints: checked as JSON too.
        checked = parse_pipeline(
            pipeline_json(pipeline) if isinstance(pipeline, Pipeline) else pipeline
        )
        self.settings.put(PIPELINE_SETTING, pipeline_json(checked))
        return self.current()

    def reset(self) -> Pipeline:
        """Back to the default pipeline."""
        return self.replace(DEFAULT_PIPELINE)


_PER_STORE: Final[weakref.WeakKeyDictionary[StoreSettings, PipelineSetting]] = (
    weakref.WeakKeyDictionary()
)
_PER_STORE_LOCK: Final = threading.Lock()


def pipeline_setting(settings: StoreSettings) -> PipelineSetting:
    """The one :class:`PipelineSetting` of the store whose settings these are."""
    with _PER_STORE_LOCK:
        found = _PER_STORE.get(settings)
        if found is None:
            found = _PER_STORE[settings] = PipelineSetting(settings)
        return found


def set_pipeline(source: Store | HasStore, pipeline: Pipeline | str | bytes | None) -> Pipeline:
    """Keep ``pipeline`` (a :class:`Pipeline` or its JSON form; None: the default one) as the
    pipeline of the store of ``source``, whose principal must be allowed to change settings
    (an admin); the pipeline now kept."""
    require(source, "change_settings")
    setting = pipeline_setting(store_of(source).settings)
    return setting.reset() if pipeline is None else setting.replace(pipeline)
