"""The statements of one save: events, their idempotency records and snapshots, in one
transaction, written the same way by the recorders (:mod:`crm_es.store.recorders`,
:mod:`crm_es.store.postgres_recorder`) and by the bulk writer child process
(:mod:`crm_es.app.bulk.writer`), which imports this module on its own: it needs nothing but the
standard library (and psycopg's types), so the child starts in a fraction of a second.

Records and snapshots carry a ``position``: the notification id of the save's first event, or,
for a save without events, the id the next event would get (the head + 1). Saves hold the events
table's lock (SQLite: the write transaction), so positions grow with the commits, and an audit
checkpoint taken at head N covers exactly the records and snapshots of position <= N, whatever
is written after it (see :mod:`crm_es.audit.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # the writer child imports psycopg only when it serves PostgreSQL
    import psycopg

# Rows as they are handed over: ids as 16-byte UUIDs (formatted where the rows are written).
# (command_id, payload_hash, customer id, version, events)
CommandRow = tuple[str, bytes, Any, int, int]
# (originator_id, originator_version, topic, state), for events and snapshots alike
EventRow = tuple[Any, int, str, bytes]


class SaveStatements(NamedTuple):
    """SQL of one store's saves (rendered to text, so a child process can use it)."""

    prelude: list[str]  # PostgreSQL: lock timeout, table lock, NOTIFY
    events: str  # SQLite: INSERT …; PostgreSQL: COPY … FROM STDIN (FORMAT BINARY)
    commands: str
    snapshots: str
    next_id: str  # the head + 1, for a save without events
    last_id: str  # PostgreSQL: the last id drawn (after the COPY); SQLite: last_insert_rowid()


def save_sqlite(
    cursor: Any,
    sql: SaveStatements,
    events: Sequence[EventRow],
    commands: Sequence[CommandRow],
    snapshots: Sequence[EventRow],
) -> list[int]:
    """Write a save inside the caller's write transaction (``cursor``: sqlite3's, or the
    library's); returns the new events' notification ids (rowids).

    One executemany instead of a statement per row: rowids of a table without AUTOINCREMENT are
    max + 1 per row, and nobody else can insert inside this write transaction, so the new ids
    are the run ending at the last one.
    """
    ids: list[int] = []
    if events:
        rows = [(_hex(oid), version, topic, state) for oid, version, topic, state in events]
        if len(rows) == 1:  # one command's event: its rowid without another statement
            cursor.execute(sql.events, rows[0])
            last = int(cursor.lastrowid)
        else:
            cursor.executemany(sql.events, rows)
            cursor.execute(sql.last_id)
            last = int(cursor.fetchone()[0])
        ids = list(range(last - len(rows) + 1, last + 1))
    if not commands and not snapshots:
        return ids
    position = ids[0] if ids else _next_id(cursor, sql)
    if commands:
        command_rows = [(c, h, _text(cid), v, n, position) for c, h, cid, v, n in commands]
        if len(command_rows) == 1:
            cursor.execute(sql.commands, command_rows[0])
        else:
            cursor.executemany(sql.commands, command_rows)
    if snapshots:
        cursor.executemany(
            sql.snapshots, [(_hex(o), v, t, s, position) for o, v, t, s in snapshots]
        )
    return ids


def save_postgres(
    cursor: psycopg.Cursor[Any],
    sql: SaveStatements,
    events: Sequence[EventRow],
    commands: Sequence[CommandRow],
    snapshots: Sequence[EventRow],
) -> list[int]:
    """Write a bulk save inside the caller's transaction: the prelude, then binary COPYs of the
    events, the records and the snapshots; returns the events' notification ids.

    COPY returns no ids; under the EXCLUSIVE lock nobody else draws from the table's sequence
    (no cache, increment 1), so ours are the run ending at its current value."""
    for statement in sql.prelude:
        cursor.execute(statement)
    ids: list[int] = []
    if events:
        with cursor.copy(sql.events) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for row in events:
                copy.write_row(row)
        cursor.execute(sql.last_id)
        last = int(_one(cursor))
        ids = list(range(last - len(events) + 1, last + 1))
    position = ids[0] if ids else _next_id(cursor, sql)
    if commands:
        with cursor.copy(sql.commands) as copy:
            copy.set_types(["text", "bytea", "text", "int8", "int4", "int8"])
            for c, h, cid, v, n in commands:
                copy.write_row((c, h, str(cid), v, n, position))
    if snapshots:
        with cursor.copy(sql.snapshots) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
            for oid, version, topic, state in snapshots:
                copy.write_row((oid, version, topic, state, position))
    return ids


def _next_id(cursor: Any, sql: SaveStatements) -> int:
    cursor.execute(sql.next_id)
    return int(_one(cursor))


def _one(cursor: Any) -> Any:
    row = cursor.fetchone()
    assert row is not None
    return row[0]


# A UUID's ``hex`` and ``str`` are Python-level formatting (~1 µs); a bulk save asks for the same
# customers' ids over and over. Kept by ``UUID.int`` (a UUID's own hash is a Python method) in
# plain dicts cleared when full: an LRU bounded below the customers of an import missed on
# every row (a quarter of the save thread's time at 100,000 customers, measured).
MAX_REMEMBERED_IDS = 250_000
_hexes: dict[int, str] = {}
_texts: dict[int, str] = {}


def _hex(value: Any) -> str:
    """A customer id as SQLite's events table keeps it (32 hex digits)."""
    if isinstance(value, str):
        return value
    found = _hexes.get(value.int)
    if found is None:
        if len(_hexes) >= MAX_REMEMBERED_IDS:
            _hexes.clear()
        found = _hexes[value.int] = value.hex
    return found


def _text(value: Any) -> str:
    """A customer id as ``crm_commands`` keeps it (canonical text)."""
    if isinstance(value, str):
        return value
    found = _texts.get(value.int)
    if found is None:
        if len(_texts) >= MAX_REMEMBERED_IDS:
            _texts.clear()
        found = _texts[value.int] = str(value)
    return found
