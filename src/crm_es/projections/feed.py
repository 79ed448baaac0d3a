"""Reading the event log for projections: rows with our own SQL, slim decoding, row keys.

Rows are read with our own SQL rather than ``select_notifications`` (the library builds a
Notification and parses a UUID per row, which cost more than decoding the event). Only the topics
some read model handles are decoded at all, and those through their slim view (see
:mod:`.slim_events`) when the stored body is plain msgpack of the current class version; any other
body (compressed, enciphered, older class version) goes through the app's mapper, which upcasts
and yields the full domain event: handlers read the same field names from either form.

Of the personal fields only those read models keep are decrypted (``KEPT_PERSONAL``: the
birthday's month and day for the care agenda, tags for segments).
The customer id and both times of every event are formatted for rows once, for the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from functools import partial
from typing import Any, TypeVar

import msgspec

from crm_es.domain.events import EVENT_TYPES
from crm_es.domain.personal_fields import map_personal
from crm_es.domain.times import iso_many
from crm_es.projections.slim_events import KEPT_PERSONAL, kept_personal, slim_decoder
from crm_es.store.codec import FORMAT, HASH_SIZE, HEADER_SIZE
from crm_es.store.database import Database
from crm_es.store.settings import KnownSince, known_since
from crm_es.store.store import Store

Row = tuple[int, str, bytes]
T = TypeVar("T")


class RowKeys(msgspec.Struct, frozen=True, gc=False):
    """What every fact row starts with, formatted once per event for all read models."""

    customer_id: str
    occurred_at: str
    recorded_at: str
    day: str  # the calendar day of the business time in the store's time zone (YYYY-MM-DD)


class _Topic:
    """How to decode one topic: its slim decoder and the 4 header bytes of the fast path."""

    __slots__ = ("decoder", "header", "personal")

    def __init__(self, cls: type[Any]) -> None:
        self.decoder = slim_decoder(cls)
        # FORMAT, no flags (neither compressed nor enciphered), the current class_version.
        self.header = bytes((FORMAT, 0)) + getattr(cls, "class_version", 1).to_bytes(2, "big")
        self.personal = bool(kept_personal(cls))


class EventFeed:
    """Reads batches of rows after a position and decodes the ones read models handle."""

    def __init__(self, store: Store, db: Database) -> None:
        self.db = db
        self.table: str = store.recorder.events_table_name  # type: ignore[attr-defined]
        self.id_column = "notification_id" if db.postgres else "rowid"
        self.mapper = store.reader(personal_fields=KEPT_PERSONAL)
        self.personal_data = self.mapper.personal_data
        self.topics = {topic: _Topic(cls) for topic, cls in EVENT_TYPES.items()}
        self.store = store
        self.known_since: KnownSince = []

    def read(self, position: int, stop: int | None, limit: int) -> list[Row]:
        """Up to ``limit`` rows after ``position`` (and up to ``stop``), in notification order."""
        column = self.id_column
        bound = f" AND {column} <= ?" if stop is not None else ""
        params = (position, limit) if stop is None else (position, stop, limit)
        self.known_since = known_since(self.store.settings)
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT {column}, topic, state FROM {self.table} WHERE {column} > ?{bound} "
                f"ORDER BY {column} LIMIT ?",
                params,
                binary=True,
            )
        return rows

    def decode(
        self, rows: Sequence[Row], routes: Mapping[str, T]
    ) -> tuple[list[T], list[Any], list[RowKeys]]:
        """The route, event and row keys of every row whose topic has a route.

        ``routes`` maps the topics to decode to what the caller does with them (the handlers);
        rows of other topics are skipped without decoding.
        """
        topics = self.topics
        plan = {
            topic: (route, entry.header, entry.decoder.decode, entry.personal)
            for topic, route in routes.items()
            if (entry := topics.get(topic)) is not None
        }
        fallback = self.mapper.decode_state
        out_routes: list[T] = []
        events: list[Any] = []
        personal: list[Any] = []
        ids: list[int] = []
        for notification_id, topic, state in rows:
            step = plan.get(topic)
            if step is None:
                if topic not in topics:
                    fallback(topic, bytes(state))  # raises: a topic this code does not know
                continue  # no read model reads this kind of event
            route, header, decode, has_personal = step
            if state[:4] == header:
                event = decode(state[HEADER_SIZE:-HASH_SIZE])
                if has_personal:
                    personal.append(event)
            else:
                event = fallback(topic, bytes(state))  # upcast, decompress, decipher, decrypt
            out_routes.append(route)
            events.append(event)
            ids.append(notification_id)
        if personal and self.personal_data is not None:
            self._decrypt(personal)
        return out_routes, events, self._keys(events, ids)

    def _decrypt(self, events: list[Any]) -> None:
        """Decrypt the personal fields read models keep, in place (slim views are not frozen)."""
        assert self.personal_data is not None
        decrypt = self.personal_data.decrypt
        for event in events:
            for field, value in map_personal(event, partial(decrypt, event.originator_id)).items():
                setattr(event, field, value)

    def _keys(self, events: list[Any], notification_ids: list[int]) -> list[RowKeys]:
        ids: list[str] = msgspec.to_builtins([e.originator_id for e in events])
        occurred = iso_many([e.occurred_at for e in events])
        recorded = iso_many([e.recorded_at for e in events])
        if self.known_since:
            self._learned_later(recorded, notification_ids)
        tz = self.store.timezone
        if tz is UTC:  # the UTC day is the first 10 characters of the UTC time
            days = [text[:10] for text in occurred]
        else:
            days = [e.occurred_at.astimezone(tz).date().isoformat() for e in events]
        return list(map(RowKeys, ids, occurred, recorded, days))

    def _learned_later(self, recorded: list[str], notification_ids: list[int]) -> None:
        """The knowledge time of events this store learned of after their recorded time (see
        :data:`~crm_es.store.settings.KNOWN_SINCE_PREFIX`): the later of the two."""
        low, high = notification_ids[0], notification_ids[-1]
        for first, last, when in self.known_since:
            if last < low or first > high:
                continue
            for i, notification_id in enumerate(notification_ids):
                if first <= notification_id <= last and recorded[i] < when:
                    recorded[i] = when
