"""The event store that links each stream into a hash chain as it writes.

Each event's stored bytes hold the hash of its predecessor in the same stream, so the writer must
know that hash. It remembers the head (version, hash) of streams it has recently read or written;
on a miss it reads the predecessor's stored bytes. A remembered head is a fact about committed
rows, so it can never be wrong; a concurrent writer that saves the same version first makes our
insert fail on the (originator_id, originator_version) key, never corrupts the chain.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import EventStore, Notification, Recording, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

from crm_es.store.codec import GENESIS, CustomerEventMapper, StoredRow, stored_hash

# Heads kept in memory; past this the map is simply cleared (a miss costs one indexed read).
MAX_REMEMBERED_HEADS: Final = 200_000


class ChainedEventStore(EventStore[UUID]):
    mapper: CustomerEventMapper

    def __init__(self, mapper: CustomerEventMapper, recorder: Any) -> None:
        super().__init__(mapper, recorder)
        # Keyed by ``UUID.int``: a UUID's own hash is a Python-level method, and the bulk path
        # looks heads up for every event.
        self._heads: dict[int, tuple[int, bytes]] = {}

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        stored, batch_heads = self.encode(domain_events)
        notification_ids = self.recorder.insert_events(stored, **kwargs)
        self.remember(batch_heads)
        recordings = []
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored, notification_ids, strict=True):
                notification = Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n_id,
                )
                recordings.append(Recording(d, notification))
        return recordings

    def encode(
        self, domain_events: Sequence[Any]
    ) -> tuple[list[StoredEvent], dict[int, tuple[int, bytes]]]:
        """Encode events in order, chaining each to its stream predecessor; the new heads are
        passed to :meth:`remember` once the rows committed."""
        rows, heads = self.encode_rows(domain_events)
        return [StoredEvent(*row) for row in rows], heads

    def encode_rows(
        self,
        domain_events: Sequence[Any],
        pending: dict[int, tuple[int, bytes]] | None = None,
    ) -> tuple[list[StoredRow], dict[int, tuple[int, bytes]]]:
        """``encode`` into plain row tuples (the bulk path). ``pending``: heads of rows that
        are being saved and will commit before these (the bulk path's previous chunk)."""
        heads: dict[int, tuple[int, bytes]] = {}
        rows = []
        remembered, encode = self._heads, self.mapper.encode_row
        pending = pending or {}
        for event in domain_events:
            key, version = event.originator_id.int, event.originator_version
            known = heads.get(key) or pending.get(key) or remembered.get(key)
            if version == 1:
                prev = GENESIS
            elif known is not None and known[0] == version - 1:
                prev = known[1]
            else:
                prev = self._read_prev_hash(event.originator_id, version)
            row = encode(event, prev)
            heads[key] = (version, stored_hash(row[3]))
            rows.append(row)
        return rows, heads

    def _read_prev_hash(self, oid: UUID, version: int) -> bytes:
        previous = self.recorder.select_events(oid, lte=version - 1, desc=True, limit=1)
        if not previous or previous[0].originator_version != version - 1:
            return GENESIS  # the insert will fail or verification will flag the gap
        return stored_hash(previous[0].state)

    def remember(self, heads: dict[int, tuple[int, bytes]]) -> None:
        """Heads of rows that committed (never of rows still being saved)."""
        if len(self._heads) + len(heads) > MAX_REMEMBERED_HEADS:
            self._heads.clear()
        self._heads.update(heads)

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]:
        rows = self.select_rows(originator_id, gt, lte, desc, limit)
        return self.decode_rows(originator_id, rows, desc)

    def decode_rows(
        self, originator_id: UUID, rows: list[tuple[int, str, bytes]], desc: bool = False
    ) -> Iterator[Any]:
        """The events of rows :meth:`select_rows` read (and the stream's head remembered)."""
        if rows:
            version, _, state = rows[0] if desc else rows[-1]
            current = self._heads.get(originator_id.int)
            if current is None or current[0] < version:
                self._heads[originator_id.int] = (version, stored_hash(state))
        decode = self.mapper.decode_state
        return (decode(topic, state) for _, topic, state in rows)

    def head_hash(self, originator_id: UUID, version: int) -> bytes:
        """The stored hash of the event at ``version`` (remembered, or read)."""
        known = self._heads.get(originator_id.int)
        if known is not None and known[0] == version:
            return known[1]
        rows = self.select_rows(originator_id, version - 1, version, False, None)
        return stored_hash(rows[0][2]) if rows else GENESIS

    def select_rows(
        self,
        oid: UUID,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[tuple[int, str, bytes]]:
        """(version, topic, state) rows of one stream, read directly: the library builds a
        StoredEvent and re-parses the stream's UUID for every row (SQLite: a third of a long
        stream's read; PostgreSQL: dict rows, half of it)."""
        recorder = self.recorder
        where = "originator_id = ?"
        params: list[Any] = [oid.hex]
        if gt is not None:
            where += " AND originator_version > ?"
            params.append(gt)
        if lte is not None:
            where += " AND originator_version <= ?"
            params.append(lte)
        order = " ORDER BY originator_version" + (" DESC" if desc else "")
        if limit is not None:
            order += " LIMIT ?"
            params.append(limit)
        if isinstance(recorder, SQLiteAggregateRecorder):
            sql = f"SELECT originator_version, topic, state FROM {recorder.events_table_name} "
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(f"{sql}WHERE {where}{order}", params)
                return c.fetchall()  # type: ignore[no-any-return]
        # PostgreSQL's modules are loaded by a store that uses it, never for SQLite (start-up
        # time): a recorder can only be PostgreSQL's once its module is loaded.
        postgres = sys.modules.get("eventsourcing.postgres")
        if postgres is not None and isinstance(recorder, postgres.PostgresAggregateRecorder):
            from psycopg.rows import tuple_row
            from psycopg.sql import SQL, Identifier

            table = Identifier(recorder.datastore.schema, recorder.events_table_name)
            query = SQL("SELECT originator_version, topic, state FROM {} WHERE {}").format(
                table, SQL((where + order).replace("?", "%s"))
            )
            params[0] = oid
            with (
                recorder.datastore.get_connection() as conn,
                conn.cursor(row_factory=tuple_row, binary=True) as cursor,
            ):
                cursor.execute(query, params, prepare=True)
                return [(v, t, bytes(s)) for v, t, s in cursor.fetchall()]
        records = recorder.select_events(oid, gt=gt, lte=lte, desc=desc, limit=limit)
        return [(r.originator_version, r.topic, r.state) for r in records]
