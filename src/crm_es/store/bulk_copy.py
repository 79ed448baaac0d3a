"""The PostgreSQL bulk save's statements: the protocol prelude, then two binary COPYs.

Shared by the recorder's in-process save (:mod:`crm_es.store.recorders`) and the bulk writer
child process (:mod:`crm_es.app.bulk.writer`), which imports this module on its own: it needs
nothing but psycopg's types, so the child starts in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the writer child imports psycopg only when it serves PostgreSQL
    import psycopg
    from psycopg.sql import SQL, Composed


def copy_chunk(
    cursor: psycopg.Cursor[Any],
    prelude: Sequence[str | SQL | Composed],
    command_copy: str | SQL | Composed,
    command_rows: Iterable[tuple[str, bytes, str, int, int]],
    event_copy: str | SQL | Composed,
    event_rows: Iterable[tuple[Any, ...]],
) -> None:
    """A PostgreSQL bulk save's statements, inside the caller's transaction: the prelude (see
    ``PostgresCommandRecorder.bulk_statements``), then the binary COPY of the ``crm_commands``
    rows and of the event rows. Shared by the in-process save and the writer child."""
    for statement in prelude:
        cursor.execute(statement)
    with cursor.copy(command_copy) as copy:
        copy.set_types(["text", "bytea", "text", "int8", "int4"])
        for command_row in command_rows:
            copy.write_row(command_row)
    with cursor.copy(event_copy) as copy:
        copy.set_types(["uuid", "int8", "text", "bytea"])
        for event_row in event_rows:
            copy.write_row(event_row)
