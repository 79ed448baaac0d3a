"""The access log: who read which customer's personal data, when, which fields and why.

Every read of personal data (``show``, ``history``, an export, a data subject's access request)
adds one row per customer to ``crm_access_log``. Rows hold no personal values, only ids, field
names, the principal and the purpose it gave, so they outlive an erasure: who read a customer's
data stays answerable after the data itself is gone.

The log is append-only and tamper-evident: each row carries a hash chained to the previous row,
``sha256(previous hash || canonical bytes of the row)`` (:func:`chain`), and rows are numbered
densely from 1. ``audit verify`` recomputes the chain and names a row that was edited, deleted
or moved; an insider who rewrites the chain from an edited row on is caught by the signed
checkpoints, which cover the log's head (:mod:`crm_es.audit.checkpoints`). Two writers never
fork the chain: the row before is read and the new rows inserted in one transaction that holds
the log's write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a transaction-level advisory
lock of the schema's log, taken first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import msgspec

from crm_es.domain.errors import InvalidValue
from crm_es.store.database import BIGINT, TEXT, Database, Tx

ACCESS_TABLE: Final = "crm_access_log"
GENESIS: Final = bytes(32)  # the "previous hash" of row 1
# Limits that keep a row small: a purpose is a short note or a ticket id, not a document.
MAX_TEXT: Final = 200
MAX_PURPOSE: Final = 500
MAX_FIELDS: Final = 100
_COLUMNS: Final = "seq, at, principal, customer_id, action, fields, purpose"
# PostgreSQL: the writers of one schema's log take this lock until their transaction ends. An
# advisory lock rather than LOCK TABLE, which a role that may only insert is not allowed.
_WRITER_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtextextended('crm_es:access_log:' || current_schema(), 0))"
)


class AccessEntry(msgspec.Struct, frozen=True):
    """One read of one customer's personal data."""

    seq: int
    at: str  # ISO 8601, UTC
    principal: str
    customer_id: str
    action: str  # show, history, export, subject, …
    fields: list[str]
    purpose: str | None

    def canonical(self) -> bytes:
        """The bytes the chain hashes: every column, in order, as compact JSON."""
        return msgspec.json.encode(
            [self.seq, self.at, self.principal, self.customer_id, self.action, self.fields,
             self.purpose]
        )  # fmt: skip


def chain(previous: bytes, entry: AccessEntry) -> bytes:
    """The hash of ``entry`` as the successor of the row whose hash is ``previous``."""
    return hashlib.sha256(previous + entry.canonical()).digest()


def create_table(tx: Tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {ACCESS_TABLE} (seq {BIGINT} PRIMARY KEY, at {TEXT} NOT NULL, "
        f"principal {TEXT} NOT NULL, customer_id {TEXT} NOT NULL, action {TEXT} NOT NULL, "
        f"fields {TEXT} NOT NULL, purpose {TEXT}, hash {TEXT} NOT NULL)"
    )
    # Both listings (by customer, by principal) read in log order.
    tx.execute(
        f"CREATE INDEX IF NOT EXISTS ix_{ACCESS_TABLE}_customer ON {ACCESS_TABLE} "
        "(customer_id, seq)"
    )
    tx.execute(
        f"CREATE INDEX IF NOT EXISTS ix_{ACCESS_TABLE}_principal ON {ACCESS_TABLE} (principal, seq)"
    )


def entry_of(row: Sequence[Any]) -> AccessEntry:
    """A row of ``SELECT {_COLUMNS}`` as an entry."""
    seq, at, principal, customer_id, action, fields, purpose = row[:7]
    return AccessEntry(
        seq=int(seq),
        at=str(at),
        principal=str(principal),
        customer_id=str(customer_id),
        action=str(action),
        fields=msgspec.json.decode(str(fields), type=list[str]),
        purpose=None if purpose is None else str(purpose),
    )


def stored_rows(tx: Tx, last: int | None = None) -> Iterator[tuple[AccessEntry, str]]:
    """Every row (up to seq ``last``) in log order, with the hash stored beside it."""
    where, params = ("", ()) if last is None else (" WHERE seq <= ?", (last,))
    sql = f"SELECT {_COLUMNS}, hash FROM {ACCESS_TABLE}{where} ORDER BY seq"
    for batch in tx.stream(sql, params):
        for row in batch:
            yield entry_of(row), str(row[7])


class AccessLog:
    """The access log of one store (``store.access_log``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            create_table(tx)

    def record(
        self,
        principal: str,
        customer_ids: Sequence[UUID],
        action: str,
        fields: Sequence[str],
        purpose: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Log that ``principal`` read ``fields`` of each of ``customer_ids`` (one row each, in
        one transaction) for ``action``, and why (``purpose``, optional)."""
        if not customer_ids:
            return
        _check_text("principal", principal, MAX_TEXT)
        _check_text("action", action, MAX_TEXT)
        if len(fields) > MAX_FIELDS:
            raise InvalidValue("fields", len(fields), f"at most {MAX_FIELDS} field names")
        for field in fields:
            _check_text("fields", field, MAX_TEXT)
        if purpose is not None:
            _check_text("purpose", purpose, MAX_PURPOSE)
        when = _utc_text(at or datetime.now(UTC))
        names = list(fields)
        with self.db.transaction() as tx:
            if tx.postgres:  # one writer at a time, readers unhindered (SQLite: BEGIN IMMEDIATE)
                tx.query(_WRITER_LOCK)
            head = tx.query(f"SELECT seq, hash FROM {ACCESS_TABLE} ORDER BY seq DESC LIMIT 1")
            seq, previous = (0, GENESIS)
            if head:
                seq, previous = int(head[0][0]), bytes.fromhex(str(head[0][1]))
            listed = msgspec.json.encode(names).decode()
            rows = []
            for customer_id in customer_ids:
                seq += 1
                entry = AccessEntry(seq, when, principal, str(customer_id), action, names, purpose)
                previous = chain(previous, entry)
                rows.append(
                    (
                        seq,
                        when,
                        principal,
                        entry.customer_id,
                        action,
                        listed,
                        purpose,
                        previous.hex(),
                    )
                )
            tx.executemany(
                f"INSERT INTO {ACCESS_TABLE} ({_COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def entries(self, customer_id: UUID | None = None, by: str | None = None) -> list[AccessEntry]:
        """The reads of one customer, or by one principal, or both, or all; in log order."""
        clauses, params = [], []
        if customer_id is not None:
            clauses.append("customer_id = ?")
            params.append(str(customer_id))
        if by is not None:
            clauses.append("principal = ?")
            params.append(by)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.reading() as tx:
            rows = tx.query(f"SELECT {_COLUMNS} FROM {ACCESS_TABLE}{where} ORDER BY seq", params)
        return [entry_of(row) for row in rows]


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(name, value, "must be a non-empty text")
    if len(value) > limit:
        raise InvalidValue(name, value[:20] + "…", f"at most {limit} characters")
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise InvalidValue(name, value, "must not hold control characters")


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidValue("at", at, "needs a time zone")
    return at.astimezone(UTC).isoformat()
