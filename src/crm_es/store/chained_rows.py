"""Hash-chained, append-only tables of our own, beyond the access log: the chaining, the writer
lock and the check of a stored chain, written once for any such table.

A row's hash is ``sha256(previous row's hash || the row's canonical bytes)``, row 1 chained to
:data:`~crm_es.store.access_log.GENESIS` — the access log's rule (:func:`link` gives the same
bytes as :func:`crm_es.store.access_log.chain`), so one reading of "tamper-evident" holds for
every log. Rows are numbered densely from 1 in a ``seq`` column with their hash, hex, in
``hash``. Two writers never fork a chain: each writer reads the head and inserts its rows in one
transaction holding the table's write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a
transaction-level advisory lock named after the table and the schema, which a role that may only
insert is allowed, unlike LOCK TABLE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, NamedTuple

from crm_es.store.access_log import GENESIS
from crm_es.store.database import Tx

__all__ = ["GENESIS", "MAX_PROBLEMS", "Head", "chain_problems", "exists", "head", "link", "lock"]

MAX_PROBLEMS: Final = 20  # a rewritten log is named by its first rows, not by a million lines


class Head(NamedTuple):
    """The last row of a chain: its number (0: none yet) and its hash."""

    seq: int
    hash: bytes


def link(previous: bytes, canonical: bytes) -> bytes:
    """The hash of a row whose canonical bytes are ``canonical``, after the row hashed
    ``previous``."""
    return hashlib.sha256(previous + canonical).digest()


def lock(tx: Tx, table: str) -> None:
    """Take ``table``'s write lock for the rest of ``tx`` (SQLite: the transaction holds it)."""
    if tx.postgres:
        tx.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(? || current_schema(), 0))",
            (f"crm_es:{table}:",),
        )


def head(tx: Tx, table: str) -> Head:
    """The chain's last row, read under :func:`lock`."""
    rows = tx.query(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1")
    if not rows:
        return Head(0, GENESIS)
    return Head(int(rows[0][0]), bytes.fromhex(str(rows[0][1])))


def exists(tx: Tx, table: str) -> bool:
    """Whether ``table`` is there: a session that may not create tables (a PostgreSQL role
    that does not own the schema) may open a store whose owner never made it."""
    if tx.postgres:
        return tx.query("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0] is True
    found = tx.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return bool(found)


def chain_problems(rows: Iterable[tuple[int, bytes, str]]) -> list[str]:
    """What is wrong with a stored chain given as (seq, canonical bytes, stored hash) in seq
    order: each row must be numbered next and its stored hash must be the hash of its contents
    chained to the previous row's stored hash. Each problem names its row."""
    problems: list[str] = []
    expected, previous = 1, GENESIS
    for seq, canonical, stored in rows:
        if seq != expected:
            gap = str(expected) if seq == expected + 1 else f"{expected}..{seq - 1}"
            problems.append(f"row {gap} is missing (deleted behind the store's back)")
        elif link(previous, canonical).hex() != stored:
            problems.append(f"row {seq}: its hash does not match its contents and the "
                            "previous row's hash (it, or the row before it, was altered or "
                            "moved)")  # fmt: skip
        expected = seq + 1
        try:
            previous = bytes.fromhex(stored)
        except ValueError:
            previous = b""
        if len(problems) >= MAX_PROBLEMS:
            problems.append(f"more problems after row {seq} not listed")
            break
    return problems
