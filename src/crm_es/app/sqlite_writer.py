"""A child process that writes the bulk path's chunks into an SQLite file, beside the deciding.

On SQLite the store's own work for a chunk (inserting into the B-trees, the commit) runs in the
sqlite3 module, which takes the GIL back for every row it binds: in a thread it only slowed the
deciding thread down (measured; see docs/performance.md). A process has its own interpreter, so
the parent decides and encodes chunk k+1 while this child stores chunk k, on the other core.

Protocol, over the child's stdin/stdout: the parent sends one frame per chunk (a 4-byte length,
then the msgpack of ``(event_sql, event_rows, command_sql, command_rows)``); the child stores both
lists in ONE transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) and answers one frame:
``("ok", "")``, ``("integrity", message)`` (a unique key collided: nothing was stored) or
``("error", message)``. End of input ends the child, rolling back nothing that was acknowledged.
The child uses the same database name, URI mode, lock timeout and journal (WAL) as the
library's connections, and the page cache the bulk saves use.

This file is also the child's program: it is run as a script and imports only the standard
library and msgspec, so it starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import subprocess
import sys
from typing import IO, Any, Final

import msgspec

_FRAME = struct.Struct(">I")
_encode = msgspec.msgpack.Encoder().encode
CHUNK_PAGE_CACHE_KIB: Final = 131_072  # the same as recorders.BULK_CACHE_KIB


class WriterGone(Exception):
    """The writer process ended or answered nonsense (the chunk may or may not be stored)."""


def _send(stream: IO[bytes], payload: object) -> None:
    # msgpack, not pickle: pickle memoises every string and bytes object it writes, which
    # made sending a chunk cost ~2 µs per row, a tenth of the deciding process's time.
    data = _encode(payload)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return msgspec.msgpack.decode(data)


class SQLiteWriterProcess:
    """The parent's handle on a writer child; one chunk at a time."""

    def __init__(self, db_name: str, lock_timeout: float) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), db_name, str(lock_timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def store(
        self,
        event_sql: str,
        event_rows: list[tuple[Any, ...]],
        command_sql: str,
        command_rows: list[tuple[Any, ...]],
    ) -> None:
        """Hand the rows to the child, which stores them in one transaction; :meth:`answer`
        tells how that went. Returns as soon as the child has the rows."""
        assert self._child.stdin is not None
        try:
            _send(self._child.stdin, (event_sql, event_rows, command_sql, command_rows))
        except OSError as e:
            raise WriterGone(f"SQLite writer process is gone: {e}") from e

    def answer(self) -> tuple[str, str]:
        """Wait for the last chunk's outcome: ("ok", ""), ("integrity", why) or ("error", why)."""
        assert self._child.stdout is not None
        answer = _receive(self._child.stdout)
        if not (isinstance(answer, list) and len(answer) == 2):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=5)
            raise WriterGone(
                f"the SQLite writer process ended (exit code {self._child.returncode}) before "
                "answering: its last chunk may or may not be stored (a re-run of an import "
                "stores only what is missing)"
            )
        return answer[0], answer[1]

    def close(self) -> None:
        if self._child.stdin is not None:
            with contextlib.suppress(OSError):  # already gone
                self._child.stdin.close()
        self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()


def _serve(db_name: str, lock_timeout: float) -> None:
    connection = sqlite3.connect(db_name, uri=True, isolation_level=None, timeout=lock_timeout)
    connection.execute(f"PRAGMA cache_size = -{CHUNK_PAGE_CACHE_KIB}")
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while (request := _receive(requests)) is not None:
        event_sql, event_rows, command_sql, command_rows = request  # rows arrive as lists
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(event_sql, event_rows)
                if command_rows:
                    connection.executemany(command_sql, command_rows)
                connection.execute("COMMIT")
            finally:
                if connection.in_transaction:  # a statement failed: store none of it
                    connection.rollback()
        except sqlite3.IntegrityError as e:
            _send(answers, ("integrity", str(e)))
        except sqlite3.Error as e:
            _send(answers, ("error", f"{type(e).__name__}: {e}"))
        else:
            _send(answers, ("ok", ""))
    connection.close()


if __name__ == "__main__":
    _serve(sys.argv[1], float(sys.argv[2]))
