"""Settings an installation keeps in its own store: the master key's check value (and, as the
store learns more about itself, its time zone). One row per name, written once and then read."""

from __future__ import annotations

from typing import Final

import msgspec

from crm_es.store.database import TEXT, Database

SETTINGS_TABLE: Final = "crm_settings"
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
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {SETTINGS_TABLE} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
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
