"""Many customers' stored rows in a few queries: what :meth:`Store.load_many` reads.

Loading customers one by one costs two queries each (the latest snapshot, then the events after
it): ~79 µs of CPU per customer on SQLite, ~180–270 µs on PostgreSQL, measured, which a new
process importing purchases pays for every customer it meets. Read together, a thousand at a
time, the same rows cost a fraction of that (see docs/performance.md, ``import_cli``). The
queries return the rows exactly as the one-by-one reads do — (version, topic, state), the bytes as
stored — so the store decodes, checks seals and chains, and decrypts them with the same code.

Both functions answer None for a recorder that is neither SQLite's nor PostgreSQL's (nothing of
ours builds one): the caller then loads one by one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from eventsourcing.sqlite import SQLiteAggregateRecorder

# Customers per query: two parameters each stays far below SQLite's 32,766 and keeps one
# answer's rows (a few events per customer, from their snapshot on) small.
BATCH_SIZE: Final = 1000

StreamRow = tuple[int, str, bytes]
"""A stored row of one stream: (originator_version, topic, state)."""


def latest_snapshot_rows(recorder: Any, ids: Sequence[UUID]) -> dict[int, StreamRow] | None:
    """The latest snapshot row of each customer that has one, keyed by ``UUID.int``."""
    found: dict[int, StreamRow] = {}
    for start in range(0, len(ids), BATCH_SIZE):
        part = ids[start : start + BATCH_SIZE]
        rows = _latest_snapshots(recorder, part)
        if rows is None:
            return None
        for oid, version, topic, state in rows:
            found[_key(oid)] = (version, topic, state)
    return found


def stream_rows_after(
    recorder: Any, wanted: Sequence[tuple[UUID, int]]
) -> dict[int, list[StreamRow]] | None:
    """For each (customer, version): the customer's rows after that version, in version order,
    keyed by ``UUID.int`` (a customer without such rows is absent)."""
    found: dict[int, list[StreamRow]] = {}
    for start in range(0, len(wanted), BATCH_SIZE):
        rows = _rows_after(recorder, wanted[start : start + BATCH_SIZE])
        if rows is None:
            return None
        current, stream = None, None
        for oid, version, topic, state in rows:  # ordered by customer, then version
            if oid != current:
                current, stream = oid, found.setdefault(_key(oid), [])
            assert stream is not None
            stream.append((version, topic, state))
    return found


def _key(oid: UUID | str) -> int:
    # SQLite keeps ids as 32 hex digits; PostgreSQL gives UUIDs.
    return int(oid, 16) if isinstance(oid, str) else oid.int


def _latest_snapshots(recorder: Any, ids: Sequence[UUID]) -> list[tuple[Any, ...]] | None:
    if isinstance(recorder, SQLiteAggregateRecorder):
        # SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum
        # (documented behaviour), read off the primary key's index.
        marks = ",".join("?" * len(ids))
        sql = (
            "SELECT originator_id, MAX(originator_version), topic, state "
            f"FROM {recorder.events_table_name} WHERE originator_id IN ({marks}) "
            "GROUP BY originator_id"
        )
        return _sqlite_rows(recorder, sql, [oid.hex for oid in ids])
    postgres = _postgres_module()
    if postgres is not None and isinstance(recorder, postgres.PostgresAggregateRecorder):
        sql = (
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state "
            "FROM {} WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version DESC"
        )
        return _postgres_rows(recorder, sql, [list(ids)])
    return None


def _rows_after(recorder: Any, wanted: Sequence[tuple[UUID, int]]) -> list[tuple[Any, ...]] | None:
    if isinstance(recorder, SQLiteAggregateRecorder):
        # CROSS JOIN keeps the wanted list as the outer loop: each customer is then one range
        # of the primary key's index.
        values = ",".join(["(?,?)"] * len(wanted))
        sql = (
            f"WITH wanted(id, after) AS (VALUES {values}) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM wanted w CROSS JOIN {recorder.events_table_name} e "
            "ON e.originator_id = w.id AND e.originator_version > w.after "
            "ORDER BY e.originator_id, e.originator_version"
        )
        params: list[Any] = []
        for oid, after in wanted:
            params += (oid.hex, after)
        return _sqlite_rows(recorder, sql, params)
    postgres = _postgres_module()
    if postgres is not None and isinstance(recorder, postgres.PostgresAggregateRecorder):
        sql = (
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, after) "
            "JOIN {} e ON e.originator_id = w.id AND e.originator_version > w.after "
            "ORDER BY e.originator_id, e.originator_version"
        )
        return _postgres_rows(recorder, sql, [[o for o, _ in wanted], [a for _, a in wanted]])
    return None


def _sqlite_rows(recorder: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(sql, params)
        return c.fetchall()  # type: ignore[no-any-return]


def _postgres_module() -> Any:
    # PostgreSQL's modules are loaded by a store that uses it, never for SQLite (start-up
    # time): a recorder can only be PostgreSQL's once its module is loaded.
    return sys.modules.get("eventsourcing.postgres")


def _postgres_rows(recorder: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    table = Identifier(recorder.datastore.schema, recorder.events_table_name)
    query = SQL(sql).format(table)
    with (
        recorder.datastore.get_connection() as conn,
        conn.cursor(row_factory=tuple_row, binary=True) as cursor,
    ):
        cursor.execute(query, params)
        return [(o, v, t, bytes(s)) for o, v, t, s in cursor.fetchall()]
