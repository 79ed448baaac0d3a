"""The sales pipeline a store works with, kept in its settings (``crm-es settings pipeline``).

Read on the write path of every command that opens an opportunity or moves it to a stage, so
cached (:mod:`crm_es.store.cached_setting`: a stage another process just added is accepted at
once; one it removed is refused, and a new first stage or probability used, within
:data:`~crm_es.store.cached_setting.REFRESH_SECONDS`). Without a stored pipeline the store works
with :data:`~crm_es.domain.pipeline.DEFAULT_PIPELINE`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline, parse_pipeline, pipeline_json
from crm_es.domain.policy import require
from crm_es.store.cached_setting import CachedSetting, one_per_store
from crm_es.store.settings import StoreSettings
from crm_es.store.store import HasStore, Store, store_of

PIPELINE_SETTING: Final = "pipeline"


class PipelineSetting(CachedSetting[Pipeline]):
    """The store's pipeline: read, changed, and cached for the write path."""

    def __init__(
        self, settings: StoreSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(settings, PIPELINE_SETTING, parse_pipeline, DEFAULT_PIPELINE, clock)

    def accepting(self, stage: str | None) -> Pipeline:
        """The pipeline to judge a move to ``stage`` by (None: to the first stage): the cached
        one while it is fresh and lists the stage, else the stored one."""
        return self.fresh_or_current(lambda p: stage is None or p.stage(stage) is not None)

    def replace(self, pipeline: Pipeline | str | bytes) -> Pipeline:
        """Keep ``pipeline`` (or its JSON form, checked) as the store's. Opportunities at a
        stage no longer listed keep it, and the report still shows it."""
        # A Pipeline built in Python skipped the schema's constraints: checked as JSON too.
        checked = parse_pipeline(
            pipeline_json(pipeline) if isinstance(pipeline, Pipeline) else pipeline
        )
        return self.keep(pipeline_json(checked))

    def reset(self) -> Pipeline:
        """Back to the default pipeline."""
        return self.replace(DEFAULT_PIPELINE)


def pipeline_setting(settings: StoreSettings) -> PipelineSetting:
    """The one :class:`PipelineSetting` of the store whose settings these are."""
    return one_per_store(PipelineSetting, settings)


def set_pipeline(source: Store | HasStore, pipeline: Pipeline | str | bytes | None) -> Pipeline:
    """Keep ``pipeline`` (a :class:`Pipeline` or its JSON form; None: the default one) as the
    pipeline of the store of ``source``, whose principal must be allowed to change settings
    (an admin); the pipeline now kept."""
    require(source, "change_settings")
    setting = pipeline_setting(store_of(source).settings)
    return setting.reset() if pipeline is None else setting.replace(pipeline)
