"""One URL picks the store: ``sqlite:///crm.db`` (default) or ``postgresql://user:pw@host/db``.

The URL is turned into the ``eventsourcing`` environment (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
``POSTGRES_*``). A PostgreSQL URL may carry ``?schema=NAME`` to keep several installations (or test
sessions) apart in one database; the schema is created when missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from crm_es.domain.errors import CrmError

DEFAULT_URL: Final = "sqlite:///crm.db"
URL_ENV_VAR: Final = "CRM_ES_DB"


class StoreUrlError(CrmError):
    pass


@dataclass(frozen=True)
class StoreConfig:
    url: str
    kind: str  # "sqlite" | "postgresql"
    env: dict[str, str]

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    @property
    def schema(self) -> str:
        return self.env.get("POSTGRES_SCHEMA", "")

    def conninfo(self) -> str:
        """A libpq connection string (PostgreSQL only)."""
        e = self.env
        parts = {
            "dbname": e["POSTGRES_DBNAME"],
            "host": e["POSTGRES_HOST"],
            "port": e["POSTGRES_PORT"],
            "user": e["POSTGRES_USER"],
            "password": e.get("POSTGRES_PASSWORD", ""),
        }
        return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL


def parse_store_url(url: str) -> StoreConfig:
    """Translate a store URL into the library's environment variables."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise StoreUrlError(f"store URL {url!r} names no database file")
        if path == ":memory:":
            # A shared-cache in-memory database, so the pool's connections see the same data.
            path = "file:crm_es_memory?mode=memory&cache=shared"
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "APPLICATION_RECORDER_TOPIC": "crm_es.store.recorders:SQLiteCommandRecorder",
        }
        return StoreConfig(url, "sqlite", env)
    if scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreUrlError(f"store URL {url!r} names no database")
        query = parse_qs(parts.query)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            # Off on purpose: the library's own insert function takes no table lock, and tailing
            # readers were measured to miss events with it. Our recorder's insert function
            # (recorders.py) takes the lock and does not read this setting.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "crm_es.store.recorders:PostgresCommandRecorder",
        }
        if "schema" in query:
            schema = query["schema"][0]
            if not schema.replace("_", "").isalnum():
                raise StoreUrlError(f"schema name {schema!r} must be letters, digits, underscores")
            env["POSTGRES_SCHEMA"] = schema
        return StoreConfig(url, "postgresql", env)
    raise StoreUrlError(
        f"unsupported store URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
    )


def ensure_postgres_schema(config: StoreConfig) -> None:
    """Create the configured schema if missing (the library expects it to exist)."""
    if not config.is_postgres or not config.schema:
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(config.schema))
        )


@contextmanager
def schema_lock(config: StoreConfig) -> Iterator[None]:
    """Serialise table creation across processes on PostgreSQL.

    ``CREATE TABLE IF NOT EXISTS`` is not safe when several processes start at the same moment
    (PostgreSQL answers "tuple concurrently updated"), so whoever creates tables first takes a
    session advisory lock for the schema. SQLite serialises writers by itself.
    """
    if not config.is_postgres:
        yield
        return
    import psycopg

    key = f"crm_es:ddl:{config.schema or 'public'}"
    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
