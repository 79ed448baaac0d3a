"""The access log's tamper evidence: its chain checked by ``audit verify``, its head covered by
the signed checkpoints.

Without checkpoints, :func:`chain_problems` checks each stored row against the stored hash of
the row before it, so an edited, moved or deleted row is named by its number on its own. Someone
who rewrites every hash from an edited row on leaves a chain that links up; a checkpoint catches
that: it signs the log's last row number and the hash recomputed from the rows' contents
(:func:`take_cut`), and keeps in the store the recomputed hash of every row it newly covers.
The signed checkpoint holds a digest of those kept hashes, so they are trusted only when they are
the signed ones; then verifying (:func:`covered_problems`) names the first row whose content is
no longer what the checkpoint saw, and every covered row that is gone.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

from crm_es.audit.chains import Problem
from crm_es.store.access_log import GENESIS, chain, stored_rows
from crm_es.store.database import BIGINT, TEXT, Database, Tx

KEPT_TABLE: Final = "crm_checkpoint_access"
MAX_PROBLEMS: Final = 20  # a rewritten log is named by its first rows, not by a million lines
_PAIR = struct.Struct(">Q32s")  # a kept (row number, hash)


class AccessCut(NamedTuple):
    """What a checkpoint takes of the access log."""

    rows: int  # the last row number covered (0: none)
    head: str  # the recomputed hash after that row, hex ("" when none)
    since: int  # the previous checkpoint's last row: rows after it are newly covered
    kept: list[tuple[int, bytes]]  # (since, hash after it), then each newly covered row's

    def kept_digest(self) -> str:
        return kept_digest(self.kept)


class CoveredLog(NamedTuple):
    """What a signed checkpoint says of the access log."""

    checkpoint: int  # the checkpoint's seq
    rows: int
    head: str
    since: int
    kept: str  # sha256 of the kept hashes


def create_kept_table(tx: Tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {KEPT_TABLE} "
        f"(seq {BIGINT} PRIMARY KEY, hashes {TEXT} NOT NULL)"
    )


def kept_digest(kept: Sequence[tuple[int, bytes]]) -> str:
    return hashlib.sha256(_pack(kept)).hexdigest()


def _pack(kept: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(_PAIR.pack(seq, digest) for seq, digest in kept)


def keep(tx: Tx, checkpoint: int, cut: AccessCut) -> None:
    tx.execute(
        f"INSERT INTO {KEPT_TABLE} (seq, hashes) VALUES (?, ?)",
        (checkpoint, base64.b64encode(_pack(cut.kept)).decode()),
    )


def _kept(db: Database, checkpoint: int) -> list[tuple[int, bytes]] | None:
    with db.transaction() as tx:
        create_kept_table(tx)
    with db.reading() as tx:
        rows = tx.query(f"SELECT hashes FROM {KEPT_TABLE} WHERE seq = ?", (checkpoint,))
    if not rows:
        return None
    try:
        packed = base64.b64decode(str(rows[0][0]), validate=True)
        return [(int(s), bytes(d)) for s, d in _PAIR.iter_unpack(packed)]
    except (ValueError, struct.error):
        return None


def recomputed(tx: Tx, last: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(row number, hash) of each row up to ``last``, chained from the rows' contents alone
    (the stored hashes are not trusted)."""
    previous = GENESIS
    for entry, _ in stored_rows(tx, last):
        previous = chain(previous, entry)
        yield entry.seq, previous


def take_cut(tx: Tx, since: int) -> AccessCut:
    """The access log as of ``tx``'s snapshot; rows after ``since`` are newly covered."""
    rows, head, start = 0, GENESIS, GENESIS
    kept: list[tuple[int, bytes]] = []
    for seq, digest in recomputed(tx):
        rows, head = seq, digest
        if seq <= since:
            start = digest
        else:
            kept.append((seq, digest))
    since = min(since, rows)
    return AccessCut(rows, head.hex() if rows else "", since, [(since, start), *kept])


# --- audit verify: the stored chain ---------------------------------------------------------


def chain_problems(tx: Tx) -> list[Problem]:
    """Each stored row follows the one before it: numbered next, and its stored hash is the
    hash of its contents chained to the previous row's stored hash."""
    problems: list[Problem] = []
    expected, previous = 1, GENESIS
    for entry, stored in stored_rows(tx):
        if entry.seq != expected:
            gap = str(expected) if entry.seq == expected + 1 else f"{expected}..{entry.seq - 1}"
            problems.append(_problem(f"row {gap} is missing (deleted behind the store's back)"))
        elif chain(previous, entry).hex() != stored:
            problems.append(_problem(f"row {entry.seq}: its hash does not match its contents and "
                                     "the previous row's hash (it, or the row before it, was "
                                     "altered or moved)"))  # fmt: skip
        expected = entry.seq + 1
        try:
            previous = bytes.fromhex(stored)
        except ValueError:
            previous = b""
        if len(problems) >= MAX_PROBLEMS:
            problems.append(_problem(f"more problems after row {entry.seq} not listed"))
            break
    return problems


def _problem(what: str) -> Problem:
    return Problem("", 0, f"access log: {what}")


# --- audit verify --anchors: what each checkpoint covered -----------------------------------


def covered_problems(db: Database, covered: Sequence[CoveredLog]) -> list[Problem]:
    """Checkpoints whose covered access log changed, named row by row when the hashes the
    store kept of it are the signed ones."""
    due = sorted((c for c in covered if c.rows > 0), key=lambda c: c.rows)
    if not due:
        return []
    heads: dict[int, tuple[int, bytes]] = {}  # checkpoint -> (last row seen, hash after it)
    with db.reading() as tx:
        last = (0, GENESIS)
        pending = list(due)
        for seq, digest in recomputed(tx, due[-1].rows):
            while pending and seq > pending[0].rows:
                heads[pending.pop(0).checkpoint] = last
            last = (seq, digest)
        for c in pending:
            heads[c.checkpoint] = last
    problems = []
    for c in due:
        seen, digest = heads[c.checkpoint]
        if seen == c.rows and digest.hex() == c.head:
            continue
        problems += _name_changes(db, c)
    return problems


def _name_changes(db: Database, c: CoveredLog) -> list[Problem]:
    where = f"checkpoint {c.checkpoint}: access log"
    kept = _kept(db, c.checkpoint)
    if kept is None or kept_digest(kept) != c.kept:
        return [Problem("", 0, f"{where}: rows it covered (up to {c.rows}) changed, and the "
                        "hashes the store kept of them were altered too")]  # fmt: skip
    (since, start), expected = kept[0], dict(kept[1:])
    with db.reading() as tx:
        now = {seq: digest for seq, digest in recomputed(tx, c.rows) if seq >= since}
    before = now.get(since, GENESIS) if since else GENESIS
    if since and (since not in now or before != start):
        return [Problem("", 0, f"{where}: rows up to {since}, which an earlier checkpoint "
                        "covered, changed (see that checkpoint)")]  # fmt: skip
    problems = []
    gone = [seq for seq in expected if seq not in now]
    if gone:
        shown = ", ".join(str(s) for s in gone[:MAX_PROBLEMS])
        more = f" and {len(gone) - MAX_PROBLEMS} more" if len(gone) > MAX_PROBLEMS else ""
        problems.append(Problem("", 0, f"{where}: row {shown}{more}, which it covered, was "
                                "deleted"))  # fmt: skip
    changed = next((s for s, d in expected.items() if s in now and now[s] != d), None)
    if changed is not None and (not gone or changed < gone[0]):
        problems.append(Problem("", 0, f"{where}: row {changed}, which it covered, was altered "
                                "or moved (and every row after it then differs)"))  # fmt: skip
    if not problems:
        problems.append(Problem("", 0, f"{where}: rows it covered (up to {c.rows}) changed"))
    return problems
