"""Every byte a store keeps on disk, read behind its back: the SQLite files (the write-ahead log
included), or each page of every relation of a PostgreSQL schema (``pageinspect``, dead row
versions included) and a ``pg_dump`` of it. What an outsider with a copy of the files, or an
insider with the server, could read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from crm_es.store.url import parse_store_url


def store_bytes(url: str) -> bytes:
    config = parse_store_url(url)
    if not config.is_postgres:
        name = config.env["SQLITE_DBNAME"]
        return b"".join(
            p.read_bytes() for p in sorted(Path(name).parent.glob(Path(name).name + "*"))
        )
    return _pages(url) + _dump(url)


def _pages(url: str) -> bytes:
    config = parse_store_url(url)
    schema = config.schema or "public"
    chunks = []
    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        relations = conn.execute(
            "SELECT c.oid::regclass::text, pg_relation_size(c.oid) / current_setting('block_size')::int "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'i', 't', 'm')",
            (schema,),
        ).fetchall()
        toast = conn.execute(
            "SELECT t.oid::regclass::text, pg_relation_size(t.oid) / current_setting('block_size')::int "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_class t ON t.oid = c.reltoastrelid WHERE n.nspname = %s",
            (schema,),
        ).fetchall()
        for name, blocks in [*relations, *toast]:
            for block in range(int(blocks)):
                page = conn.execute(
                    sql.SQL("SELECT get_raw_page(%s, %s)"), (name, block)
                ).fetchone()
                assert page is not None
                chunks.append(bytes(page[0]))
    return b"".join(chunks)


def _dump(url: str) -> bytes:
    config = parse_store_url(url)
    env = config.env
    command = [
        "pg_dump", "--no-owner", "-h", env["POSTGRES_HOST"], "-p", env["POSTGRES_PORT"],
        "-U", env["POSTGRES_USER"], "-n", config.schema or "public", env["POSTGRES_DBNAME"],
    ]  # fmt: skip
    return subprocess.run(command, check=True, capture_output=True).stdout
