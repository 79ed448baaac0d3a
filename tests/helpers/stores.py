"""Store URLs for fixtures wider than one test (a scenario built once, asserted by many tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres


@contextmanager
def module_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh store URL on the fixture's ``request.param`` ("sqlite" or "postgres"), dropped
    when the fixture ends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'crm.db'}"
        return
    require_postgres()
    url, schema = new_postgres_url()
    try:
        yield url
    finally:
        drop_schema(schema)
