"""A child process that stores the bulk path's chunks while the parent decides the next ones.

The store's side of a chunk is work in the client too: on SQLite the B-tree inserts and the
commit run in the sqlite3 module, which takes the GIL back for every row it binds (in a thread it
only slowed the deciding thread down, measured); on PostgreSQL psycopg formats every COPY row
holding the GIL (~1.3 µs per row, two rows per event). A process has its own interpreter, so the
parent decides and encodes chunk k+1 on one core while this child stores chunk k on the other.

Protocol, over the child's stdin/stdout: frames of a 4-byte length, then msgpack. The first
frame holds the settings (store, database or connection string, timeout, and the save's
statements, :class:`~crm_es.store.save_rows.SaveStatements`); then one frame per chunk, which
the child stores in ONE transaction with the same statements as the in-process save
(:mod:`crm_es.store.save_rows`), answering one frame: ``("ok", "")``, or the DB-API class name of
the error that stopped it (``"IntegrityError"``: a unique key collided, nothing was stored) and
its message. An empty frame or the end of input ends the child; so does its parent's death,
which it checks every second while it waits and again right before each commit (a commit
already under way when the parent dies completes, whole).

A chunk is ``(event_rows, command_rows, snapshot_rows)`` (:data:`ChunkRequest`).

- SQLite: between ``BEGIN IMMEDIATE`` and ``COMMIT``, on a connection opened like the library's
  (database name in URI mode, lock timeout, WAL), with the page cache of bulk saves.
- PostgreSQL: the bulk save's protocol (lock timeout, the events table's exclusive lock taken
  through the owner's ``crm_events_lock()``,
  ``NOTIFY``, binary COPYs, see :mod:`crm_es.store.postgres_recorder`), one commit. A lost
  connection is reconnected and the chunk tried again, as the library retries saves.

This file is also the child's program: it is run as a script and imports only the standard
library, msgspec and (for PostgreSQL) psycopg, so it starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Final
from uuid import UUID

import msgspec

from crm_es.store.save_rows import SaveStatements, save_postgres, save_sqlite

_FRAME = struct.Struct(">I")
_encode = msgspec.msgpack.Encoder(uuid_format="bytes").encode
CHUNK_PAGE_CACHE_KIB: Final = 131_072  # the same as recorders.BULK_CACHE_KIB
WRITER_APPLICATION_NAME: Final = "crm-es-bulk-writer"  # how its PostgreSQL sessions show


def writer_application_name(parent_pid: int) -> str:
    """The name a writer's PostgreSQL session shows: which process's import it stores."""
    return f"{WRITER_APPLICATION_NAME} {parent_pid}"


RETRIES: Final = 10  # PostgreSQL operational errors, as the library retries a save
CLOSE_TIMEOUT: Final = 60.0  # seconds a writer may take to finish its chunk when told to end
RETRY_WAIT: Final = 0.2
PIPE_BYTES: Final = 1 << 20  # Linux's default ceiling for an unprivileged process

# One chunk, as both children decode it: (events, records, snapshots). Ids travel as 16 bytes and
# are formatted here (hex for SQLite's events, text for crm_commands): that work is off the
# deciding process, which is the slower of the two.
# command_id, payload_hash, customer_id, version, events:
CommandRow = tuple[str, bytes, UUID, int, int]
EventRow = tuple[UUID, int, str, bytes]  # originator_id, originator_version, topic, state
ChunkRequest = tuple[list[EventRow], list[CommandRow], list[EventRow]]
# (kind, database or connection string, timeout, the save's statements)
Settings = tuple[str, str, float, SaveStatements]


class WriterGone(Exception):
    """The writer process ended or answered nonsense (the chunk may or may not be stored)."""


def _send(stream: IO[bytes], payload: object) -> None:
    # msgpack, not pickle: pickle memoises every string and bytes object it writes, which
    # made sending a chunk cost ~2 µs per row, a tenth of the deciding process's time.
    data = _encode(payload)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(
    stream: IO[bytes],
    decoder: msgspec.msgpack.Decoder[Any],
    ready: Callable[[], bool] = lambda: True,
) -> Any:
    """The next frame, decoded; None at the end of the stream, at an empty (end) frame, or
    when ``ready()`` (waiting for more input) says to give up."""
    head = _read_exactly(stream, _FRAME.size, ready)
    size = _FRAME.unpack(head)[0] if head is not None else 0
    data = _read_exactly(stream, size, ready) if size else None
    return None if data is None else decoder.decode(data)


def _read_exactly(stream: IO[bytes], size: int, ready: Callable[[], bool]) -> bytes | None:
    """``size`` bytes, or None (see :func:`_receive`). An unbuffered stream returns what the
    pipe has, so read until there is enough."""
    parts, missing = [], size
    while missing:
        if not ready():
            return None
        part = stream.read(missing)
        if not part:
            return None
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


_ANY = msgspec.msgpack.Decoder()


def _widen_pipe(fd: int) -> None:
    """Linux: a chunk crosses in fewer, larger writes (a 12 MB chunk in ~40% less time,
    measured). Elsewhere, and where the system refuses, the pipe stays as it is."""
    try:
        import fcntl  # POSIX only: importing it at the top would break Windows imports

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


class BulkWriterProcess:
    """The parent's handle on a writer child; one chunk at a time."""

    def __init__(self, *settings: Any) -> None:
        """``("sqlite", db_name, lock_timeout, statements)`` or ``("postgres", conninfo,
        connect_timeout, statements)``: sent as the first frame, so no password ever shows on a
        command line."""
        self._child = subprocess.Popen(
            # -P: the script's own folder (the app package) must not shadow the stdlib.
            [sys.executable, "-P", os.path.abspath(__file__), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._child.stdin is not None
        _widen_pipe(self._child.stdin.fileno())
        self.store_settings(settings)

    def store_settings(self, settings: tuple[Any, ...]) -> None:
        assert self._child.stdin is not None
        try:
            _send(self._child.stdin, settings)
        except OSError as e:
            raise WriterGone(f"the bulk writer process is gone: {e}") from e

    def store(self, chunk: ChunkRequest) -> None:
        """Hand a chunk to the child, which stores it in one transaction; :meth:`answer`
        tells how that went. Returns as soon as the child has the rows."""
        assert self._child.stdin is not None
        try:
            _send(self._child.stdin, chunk)
        except OSError as e:
            raise WriterGone(f"the bulk writer process is gone: {e}") from e

    def answer(self) -> tuple[str, str]:
        """Wait for the last chunk's outcome: ``("ok", "")``, or the DB-API class of the error
        that stopped it (``"IntegrityError"``: a unique key collided, nothing was stored) and
        its message."""
        assert self._child.stdout is not None
        answer = _receive(self._child.stdout, _ANY)
        if not (isinstance(answer, list) and len(answer) == 2):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=5)
            raise WriterGone(
                f"the bulk writer process ended (exit code {self._child.returncode}) before "
                "answering: its last chunk may or may not be stored (a re-run of an import "
                "stores only what is missing)"
            )
        return answer[0], answer[1]

    def close(self) -> None:
        """Tell the child to end (an empty frame: its input may be held open by a process
        this one started), and wait for it; one that does not end is killed."""
        if self._child.stdin is not None:
            with contextlib.suppress(OSError):  # already gone
                self._child.stdin.write(_FRAME.pack(0))
                self._child.stdin.close()
        try:
            self._child.wait(timeout=CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()


# --- the child ------------------------------------------------------------------------------------


_DB_API_ERRORS: Final = (
    "IntegrityError",
    "DataError",
    "OperationalError",
    "ProgrammingError",
    "InternalError",
    "InterfaceError",
    "NotSupportedError",
)


def _failure(error: BaseException) -> tuple[str, str]:
    """The DB-API class of a driver error (the parent raises the library's class of that
    name) and its message."""
    kind = next((c.__name__ for c in type(error).__mro__ if c.__name__ in _DB_API_ERRORS), "")
    return kind or "DatabaseError", f"{type(error).__name__}: {error}"


class _ParentGone(Exception):
    """The process that started this writer has died: store nothing more."""


class _Requests:
    """Frames from the parent. While waiting it checks every second that the parent still
    lives, so a writer whose parent was killed (its input perhaps held open by another
    process) ends instead of lingering; :meth:`parent_alive` is asked again right before
    each commit, so a killed import never has a chunk committed behind its back."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        # Unbuffered: ``select`` sees the pipe itself, so no frame can wait in a buffer.
        self.stream: IO[bytes] = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115

    def parent_alive(self) -> bool:
        return os.getppid() == self.parent

    def next(self, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        return _receive(self.stream, decoder, self._input_or_parent_gone)

    def _input_or_parent_gone(self) -> bool:
        """Wait until input arrives (True) or the parent is gone (False)."""
        import select

        while not select.select([self.stream], [], [], 1.0)[0]:
            if not self.parent_alive():
                return False
        return True


def _serve_sqlite(
    requests: _Requests, db_name: str, lock_timeout: float, sql: SaveStatements
) -> None:
    import sqlite3

    connection = sqlite3.connect(db_name, uri=True, isolation_level=None, timeout=lock_timeout)
    connection.execute(f"PRAGMA cache_size = -{CHUNK_PAGE_CACHE_KIB}")
    decoder = msgspec.msgpack.Decoder(ChunkRequest)
    answers = sys.stdout.buffer
    while (request := requests.next(decoder)) is not None:
        events, commands, snapshots = request
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                save_sqlite(connection.cursor(), sql, events, commands, snapshots)
                if not requests.parent_alive():
                    raise _ParentGone
                connection.execute("COMMIT")
            finally:
                if connection.in_transaction:  # a statement failed: store none of it
                    connection.rollback()
        except sqlite3.Error as e:
            _send(answers, _failure(e))
        else:
            _send(answers, ("ok", ""))
    connection.close()


def _serve_postgres(
    requests: _Requests, conninfo: str, connect_timeout: float, sql: SaveStatements
) -> None:
    import psycopg

    decoder = msgspec.msgpack.Decoder(ChunkRequest)
    connection: psycopg.Connection[Any] | None = None
    answers = sys.stdout.buffer
    while (request := requests.next(decoder)) is not None:
        events, commands, snapshots = request
        for attempt in range(1, RETRIES + 1):
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(conninfo, connect_timeout=int(connect_timeout))
                with connection.transaction(), connection.cursor() as cursor:
                    save_postgres(cursor, sql, events, commands, snapshots)
                    if not requests.parent_alive():
                        raise _ParentGone  # rolls the transaction back
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                # As the library retries a save: lost connections, lock timeouts, deadlocks.
                if attempt < RETRIES:
                    time.sleep(RETRY_WAIT)
                    continue
                _send(answers, _failure(e))
            except psycopg.Error as e:
                _send(answers, _failure(e))
            else:
                _send(answers, ("ok", ""))
            break
    if connection is not None:
        connection.close()


def _serve(parent: int) -> None:
    import gc
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the parent handles it (and closes
    # this child's input); the child finishes the chunk in hand instead of dying mid-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Decoding a chunk makes a tuple per row, and each collection rescans all of them: the
    # collector took a sixth of this process's time (measured). Nothing here forms a cycle,
    # so reference counting frees every chunk.
    gc.disable()
    requests = _Requests(parent)
    settings = requests.next(msgspec.msgpack.Decoder(Settings))
    if settings is None or not requests.parent_alive():
        return
    kind, target, timeout, sql = settings
    with contextlib.suppress(_ParentGone):
        if kind == "sqlite":
            _serve_sqlite(requests, target, timeout, sql)
        else:
            _serve_postgres(requests, target, timeout, sql)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
