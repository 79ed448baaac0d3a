"""Signed, anchored checkpoints: proof that what the store held at a moment is still there,
unchanged, and that the store only grew since (as immudb's consistency proofs do).

A checkpoint is taken at a cut, the last notification id N: it covers every event up to N and
every idempotency record and snapshot of position <= N (see :mod:`crm_es.store.save_rows`), so
whatever is appended later is outside it. Records of commands that changed nothing since the
last event have position N + 1, as the next save's will: the checkpoint lists them ("pending"),
and verifying checks that each listed one is still there, unchanged, whatever came after.

Per customer it keeps one line: the stream's head as of N (version and hash: the chain makes
it stand for every event before it), a digest of the covered snapshots and one of the covered
records, and the pending records. The lines, in customer order, are the leaves
of a Merkle tree (RFC 6962 hashing); the checkpoint holds its root, the counts, the cut and the
previous checkpoint's hash, and is signed with an Ed25519 key that is not in the database
(:mod:`.signing`). Since format 2 it also covers the access log (who read whose personal data,
:mod:`crm_es.store.access_log`): its last row and chain hash at the cut, and a digest of the row
hashes the store keeps to name a changed row (:mod:`.access_chain`). The signed checkpoint
goes to a file of anchors (or a notary); the lines are kept in the store, where they name what
changed when they still match a signed root.

Verifying (:mod:`.checkpoint_verify`) recomputes every checkpoint's lines from the store as it
is now: an equal root proves the covered history unchanged; a different one is named customer by
customer (from the kept lines, when they match the signature) and component by component.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm_es.audit.access_chain import AccessCut, CoveredLog, create_kept_table, keep, take_cut
from crm_es.audit.ledger import CustomerFacts, customer_facts
from crm_es.audit.merkle import EMPTY, merkle_root
from crm_es.audit.signing import public_text
from crm_es.domain.errors import CrmError
from crm_es.store.codec import stored_hash
from crm_es.store.database import BIGINT, TEXT, Tx
from crm_es.store.store import HasStore, Store, store_of

# 2: the access log is covered too. A format 1 checkpoint (none of the access_* fields) is
# still verified: it covers no access-log row.
FORMAT: Final = 2
CHECKPOINTS_TABLE: Final = "crm_checkpoints"
LINES_TABLE: Final = "crm_checkpoint_lines"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What is signed (as canonical JSON, :func:`message`). Fields with a default are left out
    of the message while they hold it, so a format 1 checkpoint's message is what was signed."""

    format: int
    seq: int
    created_at: str
    head: int  # the cut: the last notification id covered
    customers: int
    events: int
    snapshots: int
    records: int
    root: str  # Merkle root over the customers' lines
    previous: str  # sha256 of the previous checkpoint's signed message ("" for the first)
    access_rows: int = 0  # the access log's last row covered
    access_head: str = ""  # its chain hash, recomputed from the rows (hex)
    access_since: int = 0  # the previous checkpoint's access_rows: later rows are newly covered
    access_kept: str = ""  # sha256 of the row hashes kept in the store (see .access_chain)

    def access_log(self) -> CoveredLog:
        return CoveredLog(self.seq, self.access_rows, self.access_head, self.access_since,
                          self.access_kept)  # fmt: skip


class Anchor(msgspec.Struct, frozen=True):
    """One line of an anchors file: a checkpoint and its signature."""

    checkpoint: Checkpoint
    signature: str  # base64
    public_key: str  # base64, for the reader's information only: never trusted by verification


Pending = tuple[str, str, int, int]  # a record: command id, payload hash (hex), version, events


class Line(msgspec.Struct, frozen=True, array_like=True):
    customer_id: str
    head_version: int
    head_hash: str
    snapshots: str
    records: str
    pending: list[Pending] = []  # records of position N + 1 (commands that changed nothing)

    def digest(self) -> bytes:
        fields: list[object] = [self.customer_id, self.head_version, self.head_hash,
                                self.snapshots, self.records]  # fmt: skip
        if self.pending:  # (a line without any digests as lines did before they had them)
            fields.append(self.pending)
        return hashlib.sha256(msgspec.json.encode(fields)).digest()


class CheckpointError(CrmError):
    pass


def message(checkpoint: Checkpoint) -> bytes:
    return msgspec.json.encode(checkpoint)


def _create_tables(tx: Tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (seq {BIGINT} PRIMARY KEY, "
        f"anchor {TEXT} NOT NULL)"
    )
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {LINES_TABLE} (seq {BIGINT} NOT NULL, customer_id {TEXT} "
        f"NOT NULL, line {TEXT} NOT NULL, PRIMARY KEY (seq, customer_id))"
    )
    create_kept_table(tx)


# --- lines and roots ------------------------------------------------------------------------


def line_of(facts: CustomerFacts, cut: int, kept: Line | bool | None = True) -> Line | None:
    """The customer's line as of ``cut``, or None when the checkpoint covers nothing of it.

    ``kept``: True when taking the checkpoint (every record of position ``cut`` + 1 is
    pending); when verifying, the line kept when it was taken (None: it had none), whose
    pending records still there, unchanged, are the pending ones; False when no kept line can
    be trusted (none are)."""
    present = [
        (r.command_id, r.payload_hash.hex(), r.version, r.events)
        for r in facts.records
        if r.position == cut + 1
    ]
    if kept is True:
        pending = sorted(present)
    elif isinstance(kept, Line):
        pending = [p for p in kept.pending if tuple(p) in present]
    else:
        pending = []
    events = [e for e in facts.events if e.notification_id <= cut]
    snapshots = sorted(
        (s.version, hashlib.sha256(s.state).hexdigest())
        for s in facts.snapshots
        if s.position <= cut
    )
    records = sorted(
        (r.command_id, r.payload_hash.hex(), r.version, r.events)
        for r in facts.records
        if r.position <= cut
    )
    if not events and not snapshots and not records and not pending:
        return None
    last = max(events, key=lambda e: e.version) if events else None
    return Line(
        customer_id=str(facts.customer_id),
        head_version=last.version if last else 0,
        head_hash=stored_hash(last.state).hex() if last else "",
        snapshots=_digest(snapshots),
        records=_digest(records),
        pending=pending,
    )


def _digest(items: Sequence[object]) -> str:
    return hashlib.sha256(msgspec.json.encode(items)).hexdigest() if items else EMPTY


class Cut:
    """The lines of one checkpoint, collected while the ledger is read: to take it (``kept``
    None), or to verify it against the lines kept when it was taken (False: none to trust)."""

    def __init__(self, head: int, kept: dict[str, Line] | bool | None = None) -> None:
        self.head = head
        self.kept = kept
        self.lines: list[Line] = []
        self.counts = {"events": 0, "snapshots": 0, "records": 0}

    def __call__(self, facts: CustomerFacts) -> None:
        kept: Line | bool | None = True
        if isinstance(self.kept, dict):
            kept = self.kept.get(str(facts.customer_id))
        elif self.kept is False:
            kept = False
        line = line_of(facts, self.head, kept)
        if line is None:
            return
        self.lines.append(line)
        self.counts["events"] += sum(1 for e in facts.events if e.notification_id <= self.head)
        self.counts["snapshots"] += sum(1 for s in facts.snapshots if s.position <= self.head)
        self.counts["records"] += sum(1 for r in facts.records if r.position <= self.head)

    def root(self) -> str:
        return merkle_root([line.digest() for line in self.lines])


# --- taking a checkpoint --------------------------------------------------------------------


def anchor(source: Store | HasStore, key: Ed25519PrivateKey) -> Anchor:
    """Take a checkpoint of everything recorded so far, sign it and keep its lines."""
    store = store_of(source)
    with store.db.transaction() as tx:
        _create_tables(tx)
    with store.db.reading() as tx:  # one consistent cut
        rows = tx.query(f"SELECT seq, anchor FROM {CHECKPOINTS_TABLE} ORDER BY seq DESC LIMIT 1")
        head = _head(store, tx)
        cut = Cut(head)
        for facts in customer_facts(store, tx):
            cut(facts)
        last = msgspec.json.decode(str(rows[0][1]), type=Anchor) if rows else None
        access: AccessCut = take_cut(tx, last.checkpoint.access_rows if last else 0)
    previous = ""
    seq = 1
    if last is not None:
        previous, seq = hashlib.sha256(message(last.checkpoint)).hexdigest(), int(rows[0][0]) + 1
    checkpoint = Checkpoint(
        format=FORMAT,
        seq=seq,
        created_at=datetime.now(UTC).isoformat(),
        head=head,
        customers=len(cut.lines),
        root=cut.root(),
        previous=previous,
        access_rows=access.rows,
        access_head=access.head,
        access_since=access.since,
        access_kept=access.kept_digest() if access.rows else "",
        **cut.counts,
    )
    signed = Anchor(
        checkpoint=checkpoint,
        signature=base64.b64encode(key.sign(message(checkpoint))).decode(),
        public_key=public_text(key.public_key()),
    )
    with store.db.transaction() as tx:
        tx.execute(
            f"INSERT INTO {CHECKPOINTS_TABLE} (seq, anchor) VALUES (?, ?)",
            (seq, msgspec.json.encode(signed).decode()),
        )
        tx.executemany(
            f"INSERT INTO {LINES_TABLE} (seq, customer_id, line) VALUES (?, ?, ?)",
            [(seq, line.customer_id, msgspec.json.encode(line).decode()) for line in cut.lines],
        )
        if access.rows:
            keep(tx, seq, access)
    return signed


def _head(store: Store, tx: Tx) -> int:
    column = "notification_id" if tx.postgres else "rowid"
    rows = tx.query(f"SELECT COALESCE(MAX({column}), 0) FROM {store.events_table}")
    return int(rows[0][0])


def kept_anchor(store: Store) -> tuple[Anchor, list[Line]] | None:
    """The store's latest checkpoint and its kept lines (in tree order), if it has one."""
    with store.db.transaction() as tx:
        _create_tables(tx)
    with store.db.reading() as tx:
        rows = tx.query(f"SELECT seq, anchor FROM {CHECKPOINTS_TABLE} ORDER BY seq DESC LIMIT 1")
    if not rows:
        return None
    lines = kept_lines(store, int(rows[0][0])) or []
    return msgspec.json.decode(str(rows[0][1]), type=Anchor), lines


def kept_lines(store: Store, seq: int) -> list[Line] | None:
    with store.db.transaction() as tx:
        _create_tables(tx)
    with store.db.reading() as tx:
        rows = tx.query(f"SELECT line FROM {LINES_TABLE} WHERE seq = ?", (seq,))
    if not rows:
        return None
    lines = [msgspec.json.decode(str(r[0]), type=Line) for r in rows]
    return sorted(lines, key=lambda line: UUID(line.customer_id).hex)
