"""Signed, anchored checkpoints: proof that what the store held at a moment is still there,
unchanged, and that the store only grew since (as immudb's consistency proofs do).

A checkpoint is taken at a cut, the last notification id N: it covers every event up to N and
every idempotency record and snapshot of position <= N (see :mod:`crm_es.store.save_rows`), so
whatever is appended later is outside it. Per customer it keeps one line: the stream's head as
of N (version and hash: the chain makes it stand for every event before it), a digest of the
covered snapshots and one of the covered records. The lines, in customer order, are the leaves
of a Merkle tree (RFC 6962 hashing); the checkpoint holds its root, the counts, the cut and the
previous checkpoint's hash, and is signed with an Ed25519 key that is not in the database
(:mod:`.signing`). The signed checkpoint goes to a file of anchors (or a notary); the lines are
kept in the store, where they name what changed when they still match a signed root.

Verifying recomputes every checkpoint's lines from the store as it is now: an equal root proves
the covered history unchanged; a different one is named customer by customer (from the kept
lines, when they match the signature) and component by component.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crm_es.audit.chains import Problem
from crm_es.audit.ledger import CustomerFacts, customer_facts
from crm_es.audit.merkle import EMPTY, merkle_root
from crm_es.audit.signing import public_text, signature_ok
from crm_es.audit.verify import VerifyReport, verify
from crm_es.domain.errors import CrmError
from crm_es.store.codec import stored_hash
from crm_es.store.database import BIGINT, TEXT, Tx
from crm_es.store.store import HasStore, Store, store_of

FORMAT: Final = 1
CHECKPOINTS_TABLE: Final = "crm_checkpoints"
LINES_TABLE: Final = "crm_checkpoint_lines"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What is signed (as canonical JSON, :func:`message`)."""

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


class Anchor(msgspec.Struct, frozen=True):
    """One line of an anchors file: a checkpoint and its signature."""

    checkpoint: Checkpoint
    signature: str  # base64
    public_key: str  # base64, for the reader's information only: never trusted by verification


class Line(msgspec.Struct, frozen=True, array_like=True):
    customer_id: str
    head_version: int
    head_hash: str
    snapshots: str
    records: str

    def digest(self) -> bytes:
        return hashlib.sha256(msgspec.json.encode(self)).digest()


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


# --- lines and roots ------------------------------------------------------------------------


def line_of(facts: CustomerFacts, cut: int) -> Line | None:
    """The customer's line as of ``cut``, or None when the checkpoint covers nothing of it."""
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
    if not events and not snapshots and not records:
        return None
    last = max(events, key=lambda e: e.version) if events else None
    return Line(
        customer_id=str(facts.customer_id),
        head_version=last.version if last else 0,
        head_hash=stored_hash(last.state).hex() if last else "",
        snapshots=_digest(snapshots),
        records=_digest(records),
    )


def _digest(items: Sequence[object]) -> str:
    return hashlib.sha256(msgspec.json.encode(items)).hexdigest() if items else EMPTY


class Cut:
    """The lines of one checkpoint, collected while the ledger is read."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.lines: list[Line] = []
        self.counts = {"events": 0, "snapshots": 0, "records": 0}

    def __call__(self, facts: CustomerFacts) -> None:
        line = line_of(facts, self.head)
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
    previous = ""
    seq = 1
    if rows:
        last = msgspec.json.decode(str(rows[0][1]), type=Anchor)
        previous, seq = hashlib.sha256(message(last.checkpoint)).hexdigest(), int(rows[0][0]) + 1
    checkpoint = Checkpoint(
        format=FORMAT,
        seq=seq,
        created_at=datetime.now(UTC).isoformat(),
        head=head,
        customers=len(cut.lines),
        root=cut.root(),
        previous=previous,
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
    return signed


def _head(store: Store, tx: Tx) -> int:
    column = "notification_id" if tx.postgres else "rowid"
    rows = tx.query(f"SELECT COALESCE(MAX({column}), 0) FROM {store.events_table}")
    return int(rows[0][0])


# --- verifying checkpoints ------------------------------------------------------------------


def read_anchors(data: bytes, source: str) -> list[Anchor]:
    """The anchors of a file's lines (blank lines skipped); a malformed line is an error."""
    anchors = []
    decoder = msgspec.json.Decoder(Anchor)
    for number, raw in enumerate(data.splitlines(), start=1):
        if raw.strip():
            try:
                anchors.append(decoder.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                raise CheckpointError(f"{source} line {number}: not a checkpoint: {e}") from None
    return anchors


def signature_problems(anchors: Sequence[Anchor], key: Ed25519PublicKey) -> list[Problem]:
    """Each checkpoint is signed by ``key`` and follows the one before it; the store only
    grew from one to the next."""
    problems = []
    previous: Checkpoint | None = None
    for item in anchors:
        cp = item.checkpoint
        try:
            signature = base64.b64decode(item.signature, validate=True)
        except ValueError:
            signature = b""
        if not signature_ok(key, signature, message(cp)):
            problems.append(_global(cp.seq, "its signature does not verify with the given "
                                    "public key (forged or altered)"))  # fmt: skip
            continue
        if previous is not None:
            expected = hashlib.sha256(message(previous)).hexdigest()
            if cp.seq != previous.seq + 1 or cp.previous != expected:
                problems.append(_global(cp.seq, f"does not follow checkpoint {previous.seq} "
                                        "(one was left out, reordered or replaced)"))  # fmt: skip
            elif cp.head < previous.head or cp.events < previous.events:
                problems.append(_global(cp.seq, "covers less than the checkpoint before it: the "
                                        "store shrank between them"))  # fmt: skip
        previous = cp
    return problems


def _global(seq: int, what: str) -> Problem:
    return Problem("", 0, f"checkpoint {seq}: {what}")


class CheckpointReplay:
    """Recomputes the lines of several checkpoints in the one pass of a verification."""

    def __init__(self, anchors: Sequence[Anchor]) -> None:
        self.anchors = list(anchors)
        self.cuts = [Cut(a.checkpoint.head) for a in self.anchors]

    def __call__(self, facts: CustomerFacts) -> None:
        for cut in self.cuts:
            cut(facts)

    def problems(self, store: Store) -> list[Problem]:
        """Checkpoints whose covered history changed, named customer by customer."""
        found = []
        for item, cut in zip(self.anchors, self.cuts, strict=True):
            cp = item.checkpoint
            if cut.root() == cp.root:
                continue
            kept = _kept_lines(store, cp.seq)
            if kept is None or merkle_root([line.digest() for line in kept]) != cp.root:
                found.append(_global(cp.seq, "what it covered has changed, and the lines the "
                                     "store kept of it were altered too: see the stream "
                                     "problems for what can be named"))  # fmt: skip
                continue
            found += _differences(cp.seq, {x.customer_id: x for x in kept},
                                  {x.customer_id: x for x in cut.lines})  # fmt: skip
        return found


def kept_anchor(store: Store) -> tuple[Anchor, list[Line]] | None:
    """The store's latest checkpoint and its kept lines (in tree order), if it has one."""
    with store.db.transaction() as tx:
        _create_tables(tx)
    with store.db.reading() as tx:
        rows = tx.query(f"SELECT seq, anchor FROM {CHECKPOINTS_TABLE} ORDER BY seq DESC LIMIT 1")
    if not rows:
        return None
    lines = _kept_lines(store, int(rows[0][0])) or []
    return msgspec.json.decode(str(rows[0][1]), type=Anchor), lines


def _kept_lines(store: Store, seq: int) -> list[Line] | None:
    with store.db.transaction() as tx:
        _create_tables(tx)
    with store.db.reading() as tx:
        rows = tx.query(f"SELECT line FROM {LINES_TABLE} WHERE seq = ?", (seq,))
    if not rows:
        return None
    lines = [msgspec.json.decode(str(r[0]), type=Line) for r in rows]
    return sorted(lines, key=lambda line: UUID(line.customer_id).hex)


def _differences(seq: int, then: dict[str, Line], now: dict[str, Line]) -> list[Problem]:
    problems = []
    for cid in sorted(then.keys() | now.keys()):
        before, after = then.get(cid), now.get(cid)
        if before == after:
            continue
        if after is None:
            assert before is not None
            problems.append(Problem(cid, before.head_version, f"checkpoint {seq}: everything it "
                                    "covered of this customer is gone"))  # fmt: skip
            continue
        if before is None:
            problems.append(Problem(cid, after.head_version, f"checkpoint {seq}: rows of this "
                                    "customer appeared inside what it covered (inserted "
                                    "behind the store's back)"))  # fmt: skip
            continue
        problems += _line_changes(seq, before, after)
    return problems


def _line_changes(seq: int, before: Line, after: Line) -> list[Problem]:
    cid, version, problems = before.customer_id, before.head_version, []
    if (before.head_version, before.head_hash) != (after.head_version, after.head_hash):
        what = (
            f"its events up to version {before.head_version} changed"
            if after.head_version >= before.head_version
            else f"events deleted: it covered versions up to {before.head_version}, "
            f"{after.head_version} remain"
        )
        problems.append(Problem(cid, version, f"checkpoint {seq}: {what}"))
    if before.snapshots != after.snapshots:
        problems.append(Problem(cid, version, f"checkpoint {seq}: a snapshot it covered was "
                                "deleted, altered or added behind the store's back"))  # fmt: skip
    if before.records != after.records:
        problems.append(Problem(cid, version, f"checkpoint {seq}: an idempotency record it "
                                "covered was deleted, altered or added"))  # fmt: skip
    return problems


def verify_anchored(
    source: Store | HasStore,
    anchors: Sequence[Anchor],
    key: Ed25519PublicKey,
    *,
    snapshot_sample: int | None = None,
) -> VerifyReport:
    """:func:`~crm_es.audit.verify.verify` of the whole store, and of every checkpoint in
    ``anchors`` against it (signatures, succession, what each covered), in one pass."""
    store = store_of(source)
    replay = CheckpointReplay(anchors)
    report = verify(store, snapshot_sample=snapshot_sample, observers=[replay])
    problems = [*signature_problems(anchors, key), *replay.problems(store), *report.problems]
    return msgspec.structs.replace(report, ok=not problems, problems=problems)
