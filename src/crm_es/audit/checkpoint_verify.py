"""Verifying signed checkpoints (:mod:`.checkpoints`): each signature, the succession from one
checkpoint to the next, and what each covered, recomputed from the store as it is now in the one
pass of :func:`~crm_es.audit.verify.verify`. A changed root is named customer by customer from
the lines the store kept, when they still match the signed root. The access log each covered is
checked after that pass (:mod:`.access_chain`), row by row.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crm_es.audit.access_chain import covered_problems
from crm_es.audit.chains import Problem
from crm_es.audit.checkpoints import (
    Anchor,
    Checkpoint,
    CheckpointError,
    Cut,
    Line,
    kept_lines,
    message,
)
from crm_es.audit.ledger import CustomerFacts
from crm_es.audit.merkle import merkle_root
from crm_es.audit.signing import signature_ok
from crm_es.audit.verify import VerifyReport, verify
from crm_es.store.store import HasStore, Store, store_of


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
            elif (cp.head < previous.head or cp.events < previous.events
                  or cp.access_rows < previous.access_rows):  # fmt: skip
                problems.append(_global(cp.seq, "covers less than the checkpoint before it: the "
                                        "store shrank between them"))  # fmt: skip
        previous = cp
    return problems


def _global(seq: int, what: str) -> Problem:
    return Problem("", 0, f"checkpoint {seq}: {what}")


class CheckpointReplay:
    """Recomputes the lines of several checkpoints in the one pass of a verification."""

    def __init__(self, anchors: Sequence[Anchor], store: Store) -> None:
        self.anchors = list(anchors)
        self.cuts = [Cut(a.checkpoint.head, _trusted_lines(store, a)) for a in self.anchors]

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
            kept = kept_lines(store, cp.seq)
            if kept is None or merkle_root([line.digest() for line in kept]) != cp.root:
                found.append(_global(cp.seq, "what it covered has changed, and the lines the "
                                     "store kept of it were altered too: see the stream "
                                     "problems for what can be named"))  # fmt: skip
                continue
            found += _differences(cp.seq, {x.customer_id: x for x in kept},
                                  {x.customer_id: x for x in cut.lines})  # fmt: skip
        return found


def _trusted_lines(store: Store, item: Anchor) -> dict[str, Line] | bool:
    """The lines the store kept of a checkpoint, by customer, when they are the signed ones
    (their root is the checkpoint's); False when they are missing or were altered."""
    kept = kept_lines(store, item.checkpoint.seq)
    if kept is None or merkle_root([line.digest() for line in kept]) != item.checkpoint.root:
        return False
    return {line.customer_id: line for line in kept}


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
    if before.pending != after.pending:
        why = "the record of a command that changed nothing, which it covered, is gone or altered"
        problems.append(Problem(cid, version, f"checkpoint {seq}: {why}"))
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
    replay = CheckpointReplay(anchors, store)
    report = verify(store, snapshot_sample=snapshot_sample, observers=[replay])
    access = covered_problems(store.db, [a.checkpoint.access_log() for a in anchors])
    problems = [
        *signature_problems(anchors, key),
        *replay.problems(store),
        *access,
        *report.problems,
    ]
    return msgspec.structs.replace(report, ok=not problems, problems=problems)
