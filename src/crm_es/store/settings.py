"""Settings an installation keeps in its own store: the master key's check value, its time zone,
the sales pipeline, the survey topics. One row per name holds the value now; every change is also
appended to a history (name, recorded time, value), so a report known at a past time T reads a
setting as it stood at T (:meth:`StoreSettings.known_at`) and says the same thing forever."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from crm_es.domain.times import iso
from crm_es.store.database import TEXT, Database, Tx

SETTINGS_TABLE: Final = "crm_settings"
SETTINGS_HISTORY_TABLE: Final = "crm_settings_history"
# The recorded time of a value kept before its history was: earlier than any ISO time.
BEFORE_HISTORY: Final = ""
# Settings named so hold [first id, last id, time] ranges of events stored here later than the
# recorded time they carry (an audit import copies another store's events): the read models take
# that time as when this store learned of them, so a report for a past knowledge time stays what
# it was.
KNOWN_SINCE_PREFIX: Final = "known_since:"
KnownSince = list[tuple[int, int, str]]


def known_since(settings: StoreSettings) -> KnownSince:
    """Every range of events stored later than their recorded time, by first id."""
    ranges: KnownSince = []
    for _, value in settings.items(KNOWN_SINCE_PREFIX):
        ranges += msgspec.json.decode(value, type=KnownSince)
    return sorted(ranges)


class StoreSettings:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {SETTINGS_TABLE} "
                f"(name {TEXT} PRIMARY KEY, value {TEXT} NOT NULL)"
            )
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {SETTINGS_HISTORY_TABLE} (name {TEXT} NOT NULL, "
                f"recorded_at {TEXT} NOT NULL, value {TEXT} NOT NULL, "
                "PRIMARY KEY (name, recorded_at))"
            )

    def get(self, name: str) -> str | None:
        with self.db.reading() as tx:
            rows = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def claim(self, name: str, value: str) -> str:
        """The stored value of ``name``: ``value`` if it had none yet (the first one wins)."""
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {SETTINGS_TABLE} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            rows = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (name,))
        return str(rows[0][0])

    def put(self, name: str, value: str) -> None:
        """Keep ``value`` as ``name``'s, and in its history as known from now on."""
        now = iso(datetime.now(UTC))
        with self.db.transaction() as tx:
            old = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (name,))
            kept = tx.query(
                f"SELECT 1 FROM {SETTINGS_HISTORY_TABLE} WHERE name = ? LIMIT 1", (name,)
            )
            if old and not kept:  # kept before the history was: known since before any time
                self._record(tx, name, BEFORE_HISTORY, str(old[0][0]))
            tx.execute(
                f"INSERT INTO {SETTINGS_TABLE} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            self._record(tx, name, now, value)

    def known_at(self, name: str, at: datetime) -> str | None:
        """``name``'s value as it stood at the recorded time ``at`` (None: not set by then)."""
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT value FROM {SETTINGS_HISTORY_TABLE} WHERE name = ? AND recorded_at <= ? "
                "ORDER BY recorded_at DESC LIMIT 1",
                (name, iso(at)),
            )
            if rows:
                return str(rows[0][0])
            kept = tx.query(
                f"SELECT 1 FROM {SETTINGS_HISTORY_TABLE} WHERE name = ? LIMIT 1", (name,)
            )
            if kept:  # first set after ``at``
                return None
            # Set before the history was kept and not changed since: known since before.
            rows = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    @staticmethod
    def _record(tx: Tx, name: str, recorded_at: str, value: str) -> None:
        tx.execute(
            f"INSERT INTO {SETTINGS_HISTORY_TABLE} (name, recorded_at, value) VALUES (?, ?, ?) "
            "ON CONFLICT (name, recorded_at) DO UPDATE SET value = excluded.value",
            (name, recorded_at, value),
        )

    def items(self, prefix: str) -> list[tuple[str, str]]:
        """The settings whose names start with ``prefix``."""
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT name, value FROM {SETTINGS_TABLE} WHERE substr(name, 1, ?) = ? "
                "ORDER BY name",
                (len(prefix), prefix),
            )
        return [(str(n), str(v)) for n, v in rows]
