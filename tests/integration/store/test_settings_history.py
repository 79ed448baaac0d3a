"""A store setting as it stood at a past recorded time: what a report known then works with.

Every change of a setting is kept in a history beside its current value; a value kept before
the history was (a store opened by an older version) counts as known since before any time.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from crm_es import CRM
from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline, Stage
from crm_es.store.pipeline_setting import pipeline_setting
from crm_es.store.settings import SETTINGS_TABLE


def now() -> datetime:
    time.sleep(0.002)  # recorded times are microseconds: keep the moments apart
    return datetime.now(UTC)


def test_a_setting_reads_as_it_stood_at_each_recorded_time(store_url: str) -> None:
    with CRM(store_url) as crm:
        settings = crm.store.settings
        before = now()
        assert settings.known_at("colour", before) is None
        settings.put("colour", "red")
        between = now()
        settings.put("colour", "blue")
        after = now()
        assert settings.known_at("colour", before) is None  # not set by then
        assert settings.known_at("colour", between) == "red"
        assert settings.known_at("colour", after) == "blue"
        assert settings.get("colour") == "blue"
        assert settings.known_at("colour", before - timedelta(days=3650)) is None


def test_a_value_kept_before_the_history_counts_as_known_since_before_any_time(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        settings = crm.store.settings
        with crm.store.db.transaction() as tx:  # as an older version kept it: no history row
            tx.execute(
                f"INSERT INTO {SETTINGS_TABLE} (name, value) VALUES (?, ?)", ("legacy", "old")
            )
        long_ago = datetime(1990, 1, 1, tzinfo=UTC)
        assert settings.known_at("legacy", long_ago) == "old"
        changed_at = now()
        settings.put("legacy", "new")
        assert settings.known_at("legacy", long_ago) == "old"  # the change did not rewrite it
        assert settings.known_at("legacy", changed_at) == "old"
        assert settings.known_at("legacy", now()) == "new"


def test_the_pipeline_setting_known_at_a_time_before_a_change_is_the_one_then(
    store_url: str,
) -> None:
    custom = Pipeline(stages=[Stage("visit", "拜访", 5), Stage("contract", "合同", 90)])
    with CRM(store_url) as crm:
        setting = pipeline_setting(crm.store.settings)
        before = now()
        setting.replace(custom)
        assert setting.known_at(before) == DEFAULT_PIPELINE  # none kept by then: the default
        assert setting.known_at(now()) == custom == setting.current()
