"""Running many commands with one transaction per chunk: the path of imports and bulk loads.

``CRM.execute_many`` delegates here. Each chunk of commands is decided in order on the state
left by the previous ones and its new events and idempotency records are stored in ONE
transaction (see :mod:`crm_es.app.bulk.chunk`). A failed command stores nothing and does not
stop the others; if the transaction collides with another writer, nothing of the chunk was
stored and its commands run again one by one.

Saves are pipelined: chunk k is stored by a writer child process (:mod:`crm_es.app.bulk.writer`,
its own interpreter, on the other core) while chunk k+1 is decided on the states chunk k left.
Chunk k+1 is saved only after chunk k committed; if chunk k's save fails, chunk k+1 is thrown
away and decided again. Outcomes of a chunk are yielded only after its transaction committed,
so every result handed out is durable. Small chunks, and in-memory SQLite databases (which no
other process can open), are saved in this process.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Protocol, cast

from eventsourcing import persistence
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT

from crm_es.app.bulk.chunk import Chunk, ExecuteOne, Outcome
from crm_es.app.bulk.writer import (
    BulkWriterProcess,
    ChunkRequest,
    WriterGone,
    writer_application_name,
)
from crm_es.app.command_unit import CommandUnit
from crm_es.domain import commands as cmd
from crm_es.store.recorders import COPY_THRESHOLD, SQLiteCommandRecorder, command_rows
from crm_es.store.store import Store

if TYPE_CHECKING:  # loaded only by a PostgreSQL store (start-up time of everything else)
    from crm_es.store.postgres_recorder import PostgresCommandRecorder

_gc_pause = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk run goes on (threads nest safely).

    A chunk allocates a few tracked objects per event (rows, stored events) that live until its
    commit; the collector then rescans them, and the whole customer cache, over and over: a
    fifth of an import's time, measured. Nothing a chunk makes forms a cycle, so reference
    counting frees all of it. The pause spans the whole run, not each chunk: resuming between
    chunks let the collector run a full collection almost every time (7% of a 1M-event import,
    measured); it resumes when the last run ends.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_pause:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_pause:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


class _PendingSave(Protocol):
    def result(self) -> None: ...


class _Saver(Protocol):
    def submit(self, chunk: Chunk) -> _PendingSave: ...

    def close(self) -> None: ...


class _InlineSaver:
    """Saves at once, in the calling thread (small chunks, and in-memory SQLite stores)."""

    def submit(self, chunk: Chunk) -> _PendingSave:
        future: Future[None] = Future()
        try:
            _save(chunk)
        except Exception as e:  # reported in order, by result(); Ctrl-C and exits go at once
            future.set_exception(e)
        else:
            future.set_result(None)
        return future

    def close(self) -> None:
        pass


class _WriterProcessSaver:
    """Large chunks are stored by a writer child process (see :mod:`crm_es.app.bulk.writer`),
    started on the first one; small chunks are saved inline."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._writer: BulkWriterProcess | None = None
        self._inline = _InlineSaver()
        recorder = store.recorder
        self._sqlite = recorder if isinstance(recorder, SQLiteCommandRecorder) else None
        self._postgres = (
            cast("PostgresCommandRecorder", recorder) if store.config.is_postgres else None
        )

    def submit(self, chunk: Chunk) -> _PendingSave:
        if len(chunk.stored) < COPY_THRESHOLD:
            return self._inline.submit(chunk)
        try:
            if self._writer is None:
                self._writer = self._start()
            self._writer.store(self._request(chunk))
        except WriterGone as e:
            raise OperationalError(str(e)) from e
        return _WriterSave(self._writer)

    def _start(self) -> BulkWriterProcess:
        if self._sqlite is not None:
            pool = self._sqlite.datastore.pool
            timeout = pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT
            sql = self._sqlite.save_statements
            return BulkWriterProcess("sqlite", pool.db_name, timeout, sql)
        assert self._postgres is not None
        with self._postgres.datastore.get_connection() as conn:
            sql = self._postgres.rendered_statements(conn)
        name = writer_application_name(os.getpid())
        conninfo = self._store.config.conninfo(application_name=name)
        connect_timeout = float(self._store.env.get("POSTGRES_CONNECT_TIMEOUT") or 30)
        return BulkWriterProcess("postgres", conninfo, connect_timeout, sql)

    @staticmethod
    def _request(chunk: Chunk) -> ChunkRequest:
        return (chunk.stored, command_rows(chunk.records), chunk.snapshots)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _WriterSave:
    """A chunk handed to the writer process; ``result()`` waits for its transaction."""

    def __init__(self, writer: BulkWriterProcess) -> None:
        self._writer = writer

    def result(self) -> None:
        try:
            status, message = self._writer.answer()
        except WriterGone as e:  # a store error, as the library reports them
            raise OperationalError(str(e)) from e
        if status != "ok":  # the library's class of the same DB-API name
            error = getattr(persistence, str(status), None)
            if not (isinstance(error, type) and issubclass(error, persistence.PersistenceError)):
                error = OperationalError
            raise error(message)


def _save(chunk: Chunk) -> None:
    if chunk.stored or chunk.records:
        stored = [StoredEvent(*row) for row in chunk.stored]
        chunk.unit.store.recorder.insert_events(
            stored, commands=chunk.records, snapshots=chunk.snapshots
        )


def _saver_for(store: Store) -> _Saver:
    recorder = store.recorder
    if getattr(sys, "frozen", False):  # a bundled app: no interpreter to run the writer with
        return _InlineSaver()
    if store.config.is_postgres:
        return _WriterProcessSaver(store)
    # An in-memory SQLite database cannot be opened by another process.
    if (
        isinstance(recorder, SQLiteCommandRecorder)
        and not recorder.datastore.pool.is_sqlite_memory_mode
    ):
        return _WriterProcessSaver(store)
    return _InlineSaver()


def execute_many(
    unit: CommandUnit,
    execute_one: ExecuteOne,
    commands: Iterable[cmd.Command],
    *,
    chunk_size: int = 500,
    validated: bool = False,
) -> Iterator[Outcome]:
    """Run many commands, saving each chunk's events in ONE transaction.

    Yields, in order, a result or the error of each command; a failed command stores nothing
    and does not stop the others. Much faster than ``execute`` in a loop (one commit per
    chunk instead of per command): the path for imports, the demo and bulk loads.
    Pass ``validated=True`` for commands that came out of msgspec decoding.
    """
    with gc_paused():  # chunk_size below 1 means one command per chunk, as it always did
        yield from _pipeline(Runs(unit, execute_one, validated), iter(commands), max(chunk_size, 1))


class Runs:
    """What every chunk of one bulk run is made with."""

    def __init__(self, unit: CommandUnit, execute_one: ExecuteOne, validated: bool) -> None:
        self.unit, self.execute_one, self.validated = unit, execute_one, validated

    def decided(self, batch: list[cmd.Command], before: Chunk | None) -> Chunk:
        chunk = Chunk(self.unit, self.execute_one, batch, self.validated)
        chunk.decide(before)
        return chunk


def _pipeline(runs: Runs, source: Iterator[cmd.Command], chunk_size: int) -> Iterator[Outcome]:
    saver = _saver_for(runs.unit.store)
    in_flight: tuple[Chunk, _PendingSave] | None = None
    current: Chunk | None = None
    try:
        while batch := list(islice(source, chunk_size)):
            previous = in_flight[0] if in_flight is not None else None
            current = runs.decided(batch, previous)
            if in_flight is None:
                in_flight, current = (current, saver.submit(current)), None
                continue
            chunk, saving = in_flight
            committed = _settle(chunk, saving, after=current)
            in_flight = None  # settled: if the next submit fails, only `current` is left
            if committed:
                in_flight, current = (current, saver.submit(current)), None
                yield from chunk.outcomes
                continue
            # Another writer changed one of these customers meanwhile: nothing of the
            # chunk was stored, and the next one was decided on its states.
            current.abandon()
            yield from chunk.run_one_by_one()
            current = runs.decided(batch, None)
            in_flight, current = (current, saver.submit(current)), None
        if in_flight is not None:
            chunk, saving = in_flight
            committed = _settle(chunk, saving, after=None)
            in_flight = None
            yield from chunk.outcomes if committed else chunk.run_one_by_one()
    finally:
        # An error, or the caller stopped early: no save may go on behind its back, and
        # states that may hold unsaved events leave the cache.
        saver.close()
        for leftover in (in_flight[0] if in_flight is not None else None, current):
            if leftover is not None:
                leftover.abandon()


def _settle(chunk: Chunk, saving: _PendingSave, after: Chunk | None) -> bool:
    """Wait for ``chunk``'s save and finish it: True if it committed (heads, snapshots and
    states handed on), False if it collided (its states dropped; nothing was stored)."""
    if _committed(saving):
        chunk.stored_ok(after=after)
        return True
    chunk.abandon()
    return False


def _committed(saving: _PendingSave) -> bool:
    """Wait for a save: True if it committed, False if it collided (nothing stored)."""
    try:
        saving.result()
    except IntegrityError:
        return False
    return True
