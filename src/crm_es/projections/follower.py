"""Following the event log: keep read models current, one worker per read model, ride out outages.

On PostgreSQL several ``follow`` processes may run for the same read model (on several hosts):
each read model has a session-level advisory lock, and only the worker holding it applies events;
the others wait as standbys and try the lock every poll, so when the leader dies (its session ends,
releasing the lock) a standby takes over within one poll interval. New events wake the leader
through LISTEN/NOTIFY (the library's recorder NOTIFYs on every insert); SQLite has no
notifications and one host, so there every worker polls and the engine's position check alone
keeps the work exactly-once.

A lost connection (PostgreSQL restarted, network cut) is logged; the follower drops its
connections, waits with growing backoff, reconnects, re-claims its locks and carries on from the
positions stored in the database, so nothing is lost or applied twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from eventsourcing.persistence import PersistenceError

from crm_es.projections.engine import Progress, ProjectionEngine

MAX_BACKOFF: Final = 5.0


def _outage_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    return (psycopg.OperationalError, psycopg.InterfaceError, PersistenceError,
            sqlite3.OperationalError)  # fmt: skip


class Follower:
    def __init__(
        self,
        engine: ProjectionEngine,
        names: Sequence[str],
        poll_interval: float = 0.5,
        progress: Progress | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.engine = engine
        self.names = list(names)
        self.poll_interval = poll_interval
        self.progress = progress
        self.log = log
        self.leading: set[str] = set()
        self._conn: Any = None  # PostgreSQL: LISTEN and advisory locks live on this session

    def run(self, stop: threading.Event) -> None:
        backoff = 0.2
        outages = _outage_errors()
        try:
            while not stop.is_set():
                try:
                    self._claim()
                    for name in sorted(self.leading):
                        self.engine.catch_up(name, self.progress)
                    self._wait(stop)
                    backoff = 0.2
                except outages as e:
                    self.log(
                        f"store unavailable ({type(e).__name__}: {e}); retry in {backoff:.1f} s"
                    )
                    self._disconnect()
                    self.engine.db.close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            self._disconnect()

    # --- leadership ---------------------------------------------------------------------------

    def _lock_key(self, name: str) -> str:
        return f"crm_es:{self.engine.store.config.schema}:{name}"

    def _claim(self) -> None:
        if not self.engine.db.postgres:
            self.leading = set(self.names)
            return
        conn = self._connection()
        for name in self.names:
            if name in self.leading:
                continue
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._lock_key(name),)
            ).fetchone()
            if row and row[0]:
                self.leading.add(name)
                self.log(f"leading {name}")
            elif not hasattr(self, f"_told_{name}"):
                setattr(self, f"_told_{name}", True)
                self.log(f"standby for {name}: another worker leads it")

    # --- waiting ------------------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg
            from psycopg import sql

            self._conn = psycopg.connect(self.engine.store.config.conninfo(), autocommit=True,
                                         connect_timeout=5)  # fmt: skip
            channel = self.engine.store.recorder.channel_name  # type: ignore[attr-defined]
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.leading.clear()  # advisory locks belong to the old session
        return self._conn

    def _wait(self, stop: threading.Event) -> None:
        if not self.engine.db.postgres or not self.leading:
            stop.wait(self.poll_interval)
            return
        conn = self._connection()
        started = time.monotonic()
        for _ in conn.notifies(timeout=self.poll_interval, stop_after=1):
            break
        if time.monotonic() - started < self.poll_interval:
            for _ in conn.notifies(timeout=0.01):  # coalesce a burst of inserts
                pass

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self.leading.clear()
