"""Fixtures shared by every test: real stores, never a mocked one.

``store_url`` runs a test on SQLite (a temporary file) and on PostgreSQL (a schema of its own,
dropped afterwards). The PostgreSQL server comes from ``CRM_ES_TEST_POSTGRES``; when it cannot be
reached the PostgreSQL cases skip with the reason, except under ``CI``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_es import CRM
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL; the test runs once per store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    yield from _postgres_store()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL store URL, for what only PostgreSQL has (locks, NOTIFY)."""
    yield from _postgres_store()


def _postgres_store() -> Iterator[str]:
    require_postgres()
    url, schema = new_postgres_url()
    try:
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture
def crm(store_url: str) -> Iterator[CRM]:
    app = CRM(store_url)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"
