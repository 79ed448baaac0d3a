"""One URL picks the store: ``sqlite:///crm.db`` (default) or ``postgresql://user:pw@host/db``.

The URL is turned into the ``eventsourcing`` environment (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
``POSTGRES_*``). A PostgreSQL URL may carry ``?schema=NAME`` to keep several installations (or test
sessions) apart in one database; the schema is created when missing. Schema names are taken as
written (``Tenant1`` and ``tenant1`` are two installations) and always quoted by the driver;
PostgreSQL's own schemas are refused. Either kind of URL may carry ``?master_key_file=PATH``
(see :mod:`crm_es.store.secrets`). Connection strings are built by psycopg, never by hand, and a
URL is only ever shown with its password hidden (:meth:`StoreConfig.redacted_url`).
"""

from __future__ import annotations

import os
import re
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
    master_key_file: str | None = None  # from the URL; else $CRM_ES_MASTER_KEY_FILE

    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***``: the only form ever shown."""
        return redacted(self.url)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    @property
    def schema(self) -> str:
        return self.env.get("POSTGRES_SCHEMA", "")

    def conninfo(self, **extra: str) -> str:
        """A libpq connection string (PostgreSQL only), quoted by psycopg."""
        from psycopg.conninfo import make_conninfo

        e = self.env
        parts = {
            "dbname": e["POSTGRES_DBNAME"],
            "host": e["POSTGRES_HOST"],
            "port": e["POSTGRES_PORT"],
            "user": e["POSTGRES_USER"],
            "password": e.get("POSTGRES_PASSWORD", ""),
            **extra,
        }
        return make_conninfo(**{k: v for k, v in parts.items() if v})


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL


RESERVED_SCHEMAS: Final = ("information_schema",)


def redacted(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***``. Read from the text, not
    from a URL parser: a password with an unescaped ``#``, ``/`` or ``?`` makes parsers end the
    user part early and show the rest. Everything up to the last ``@`` is the user part (an
    ``@`` further on, in a query, hides more than needed, never less)."""
    url = _SECRET_PARAM.sub(r"\1=***", url)  # libpq also takes ?password=…
    scheme, sep, rest = url.partition("://")
    user_part, at, host_part = rest.rpartition("@")
    if not sep or not at or ":" not in user_part:
        return url
    return f"{scheme}://{user_part.split(':', 1)[0]}:***@{host_part}"


# Query parameters that carry a secret, up to the next parameter.
_SECRET_PARAM: Final = re.compile(r"((?<=[?&;])(?:ssl)?password)=[^&#]*", re.IGNORECASE)


def parse_store_url(url: str) -> StoreConfig:
    """Translate a store URL into the library's environment variables."""
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # The parser's message may quote a piece of the password: never shown.
        why = "the port is a number; a password holding # / ? @ must be percent-encoded (%23)"
        raise StoreUrlError(f"store URL {shown!r} is malformed: {why}") from None
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    key_file = query.get("master_key_file", [None])[0]
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise StoreUrlError(f"store URL {shown!r} names no database file")
        if path == ":memory:":
            # A shared-cache in-memory database, so the pool's connections see the same data.
            path = "file:crm_es_memory?mode=memory&cache=shared"
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "APPLICATION_RECORDER_TOPIC": "crm_es.store.recorders:SQLiteCommandRecorder",
        }
        return StoreConfig(url, "sqlite", env, key_file)
    if scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreUrlError(f"store URL {shown!r} names no database")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            # Off on purpose: the library's own insert function takes no table lock, and tailing
            # readers were measured to miss events with it. Our recorder's insert function
            # (recorders.py) takes the lock and does not read this setting.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "crm_es.store.postgres_recorder:PostgresCommandRecorder",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = _schema_name(query["schema"][0])
        return StoreConfig(url, "postgresql", env, key_file)
    raise StoreUrlError(
        f"unsupported store URL {shown!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
    )


def _schema_name(schema: str) -> str:
    """A schema of our own: letters, digits and underscores, case kept, not PostgreSQL's."""
    if not schema or len(schema) > 63 or not schema.replace("_", "").isalnum():
        msg = f"schema name {schema!r} must be 1-63 letters, digits or underscores"
        raise StoreUrlError(msg)
    if schema.lower().startswith("pg_") or schema.lower() in RESERVED_SCHEMAS:
        raise StoreUrlError(f"schema name {schema!r} is reserved by PostgreSQL")
    return schema


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


def store_exists(config: StoreConfig, marker_table: str) -> bool:
    """Whether the store was ever created: its SQLite file exists, or its PostgreSQL schema
    holds ``marker_table`` (a table every store creates when first opened)."""
    if not config.is_postgres:
        name = config.env["SQLITE_DBNAME"]
        return name.startswith("file:") or os.path.exists(name)
    import psycopg

    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = %s "
            "AND table_schema = COALESCE(NULLIF(%s, ''), current_schema())",
            (marker_table, config.schema),
        ).fetchone()
    return row is not None


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
