"""The PostgreSQL server of the test run: reachable or not, and a schema of its own per test.

The server comes from ``CRM_ES_TEST_POSTGRES``; when it cannot be reached the PostgreSQL cases
skip with the reason, except under ``CI``, where they fail.
"""

from __future__ import annotations

import itertools
import os
import secrets
import tempfile
import uuid
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("CRM_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_SESSION = uuid.uuid4().hex[:8]
_counter = itertools.count()
_postgres_problem: str | None = None
_postgres_checked = False


def _postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can). Checked once per session."""
    global _postgres_checked, _postgres_problem
    if not _postgres_checked:
        _postgres_checked = True
        import psycopg

        from crm_es.store.url import parse_store_url

        try:
            with psycopg.connect(parse_store_url(POSTGRES_URL).conninfo(), connect_timeout=3):
                pass
        except Exception as e:
            _postgres_problem = f"PostgreSQL at {POSTGRES_URL} unreachable: {e}"
    return _postgres_problem


def require_postgres() -> None:
    problem = _postgres_unavailable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set, so PostgreSQL tests are mandatory)")
        pytest.skip(problem)


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    from crm_es.store.url import parse_store_url

    with psycopg.connect(parse_store_url(POSTGRES_URL).conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    (Path(tempfile.gettempdir()) / f"{schema}.key").unlink(missing_ok=True)


def new_postgres_url() -> tuple[str, str]:
    """A URL of a schema of its own, with a master key file of its own (outside the database,
    as a PostgreSQL store needs)."""
    schema = f"crm_test_{_SESSION}_{next(_counter)}"
    key_file = Path(tempfile.gettempdir()) / f"{schema}.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}schema={schema}&master_key_file={key_file}", schema
