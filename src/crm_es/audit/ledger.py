"""Everything the store keeps about each customer, read in one consistent pass: the stream's
events, its snapshots, its idempotency records and its key's state.

Verification (:mod:`.verify`) and checkpoints (:mod:`.checkpoints`) both walk this. The four
tables are read in one read transaction (a consistent cut on both stores), each ordered by
customer id, and merged customer by customer, so memory holds one customer at a time.
Customers appear once each, whatever table they are found in (a snapshot or a record without a
stream is exactly what the audit must see).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple
from uuid import UUID

from crm_es.store.database import Tx
from crm_es.store.keys import KEY_TABLE
from crm_es.store.pg_functions import LOGIN_COLUMN
from crm_es.store.recorders import COMMANDS_TABLE
from crm_es.store.store import Store

BATCH = 2000


class EventRow(NamedTuple):
    notification_id: int
    version: int
    topic: str
    state: bytes
    login: str | None = None  # PostgreSQL after roles init: the login that inserted it


class SnapshotRow(NamedTuple):
    version: int
    topic: str
    state: bytes
    position: int  # 0: written before snapshots had a position


class RecordRow(NamedTuple):
    command_id: str
    payload_hash: bytes
    version: int
    events: int
    position: int  # 0: written before records had a position


class CustomerFacts(NamedTuple):
    customer_id: UUID
    events: list[EventRow]  # in version order
    snapshots: list[SnapshotRow]  # in version order
    records: list[RecordRow]
    key: bool | None  # True: a key exists; False: erased (a tombstone); None: no key row
    key_material: str | None = None  # the wrapped key, while it exists (or MATERIAL_HIDDEN)


# A login that may not read key material (an auditor's) sees whether a key exists, not the key.
MATERIAL_HIDDEN = "(key material not readable by this login)"


def _hex(value: Any) -> str:
    """A customer id as the sort key all four tables share (32 lower-case hex digits)."""
    return value.hex if isinstance(value, UUID) else str(value).replace("-", "").lower()


def customer_facts(store: Store, tx: Tx, customer: UUID | None = None) -> Iterator[CustomerFacts]:
    """Every customer's facts (or one customer's), in customer id order, read in ``tx``."""
    pg = tx.postgres
    text_order = ' COLLATE "C"' if pg else ""  # canonical UUID text sorts like its hex
    only_stream = only_text = ""
    params: tuple[Any, ...] = ()
    if customer is not None:
        only_stream, only_text = " WHERE originator_id = ?", " WHERE customer_id = ?"
    login = LOGIN_COLUMN if pg and _has_column(tx, store.events_table, LOGIN_COLUMN) else "NULL"
    events = _rows(
        tx,
        f"SELECT {'notification_id' if pg else 'rowid'}, originator_id, originator_version, "
        f"topic, state, {login} FROM {store.events_table}{only_stream} "
        "ORDER BY originator_id, originator_version",
        _stream_id(customer, pg),
    )
    snapshots = _rows(
        tx,
        "SELECT originator_id, originator_version, topic, state, COALESCE(position, 0) "
        f"FROM {store.snapshots_table}{only_stream} ORDER BY originator_id, originator_version",
        _stream_id(customer, pg),
    )
    records = _rows(
        tx,
        "SELECT customer_id, command_id, payload_hash, version, events, COALESCE(position, 0) "
        f"FROM {COMMANDS_TABLE}{only_text} ORDER BY customer_id{text_order}, command_id"
        f"{text_order}",
        params if customer is None else (str(customer),),
    )
    material = "key_material"
    if pg and not tx.query("SELECT has_column_privilege(?, 'key_material', 'SELECT')",
                           (KEY_TABLE,))[0][0]:  # fmt: skip
        material = f"CASE WHEN erased_at IS NULL THEN '{MATERIAL_HIDDEN}' END"
    keys = _rows(
        tx,
        f"SELECT customer_id, {material} FROM {KEY_TABLE}{only_text} "
        f"ORDER BY customer_id{text_order}",
        params if customer is None else (str(customer),),
    )
    yield from _merge(events, snapshots, records, keys)


def _has_column(tx: Tx, table: str, column: str) -> bool:
    return bool(
        tx.query(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = ? "
            "AND NOT attisdropped",
            (table, column),
        )
    )


def _stream_id(customer: UUID | None, postgres: bool) -> tuple[Any, ...]:
    if customer is None:
        return ()
    return (customer,) if postgres else (customer.hex,)


def _rows(tx: Tx, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql``, fetched in batches on a cursor of their own."""
    for batch in tx.stream(sql, params, BATCH):
        yield from batch


class _Peek:
    """An ordered row source that can be looked at before it is taken from."""

    def __init__(self, rows: Iterator[tuple[Any, ...]], id_column: int) -> None:
        self._rows, self._id_column = rows, id_column
        self.row: tuple[Any, ...] | None = next(rows, None)
        self.key = _hex(self.row[id_column]) if self.row is not None else None

    def take_while(self, key: str) -> list[tuple[Any, ...]]:
        taken = []
        while self.row is not None and self.key == key:
            taken.append(self.row)
            self.row = next(self._rows, None)
            self.key = _hex(self.row[self._id_column]) if self.row is not None else None
        return taken


def _merge(
    events: Iterator[tuple[Any, ...]],
    snapshots: Iterator[tuple[Any, ...]],
    records: Iterator[tuple[Any, ...]],
    keys: Iterator[tuple[Any, ...]],
) -> Iterator[CustomerFacts]:
    sources = (_Peek(events, 1), _Peek(snapshots, 0), _Peek(records, 0), _Peek(keys, 0))
    while True:
        pending = [s.key for s in sources if s.key is not None]
        if not pending:
            return
        key = min(pending)
        e, s, r, k = (source.take_while(key) for source in sources)
        yield CustomerFacts(
            customer_id=UUID(key),
            events=[EventRow(int(n), int(v), t, bytes(st), lg) for n, _, v, t, st, lg in e],
            snapshots=[SnapshotRow(int(v), t, bytes(st), int(p)) for _, v, t, st, p in s],
            records=[RecordRow(c, bytes(h), int(v), int(n), int(p)) for _, c, h, v, n, p in r],
            key=k[0][1] is not None if k else None,
            key_material=str(k[0][1]) if k and k[0][1] is not None else None,
        )
