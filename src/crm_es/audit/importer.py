"""Audit import: an export (:mod:`.export`) written into another store, checked before anything
is stored.

The file is read twice. The first pass stores nothing and refuses the file unless: it is whole
(header to end line, counts and digest matching); every chain links up; every event has a known
topic, decodes, and is one the service could have written (:mod:`crm_es.domain.history_rules`);
and, when the file carries the source's signed checkpoint and the importer holds the public key,
the signature verifies and each customer's events up to the checkpoint are the ones it covers
(its line's head, by Merkle proof). A stream the target already has must be a prefix of the
file's, byte for byte.

The second pass stores: the keys, then each stream's missing events in batches. A marker in the
store's settings says an import is under way until the last batch and the snapshots are stored,
so a ``kill -9`` at any moment leaves either nothing or an import that ``audit verify`` reports
as unfinished and a re-run of the same command completes (it stores only what is missing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import StoredEvent

from crm_es.audit.chains import Head, heads_digest, link_problem
from crm_es.audit.checkpoint_verify import signature_problems
from crm_es.audit.export import (
    EXPORT_FORMAT,
    ExportCheckpoint,
    ExportEnd,
    ExportEvent,
    ExportHeader,
    ExportKey,
    ExportLine,
    ExportProof,
)
from crm_es.audit.key_audit import ERASED_IN_SOURCE
from crm_es.audit.merge_twins import lone_side
from crm_es.audit.merkle import proves
from crm_es.audit.verify import IMPORT_MARKER
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.decide.envelope import FUTURE_SKEW
from crm_es.domain.errors import ImportRefused
from crm_es.domain.goal_events import GOAL_EVENTS
from crm_es.domain.history_rules import event_problem
from crm_es.domain.plan import PLAN_ID, Plan, evolve_plan
from crm_es.domain.plan_rules import plan_event_problem
from crm_es.domain.policy import require
from crm_es.domain.times import iso
from crm_es.store.codec import GENESIS, stored_hash
from crm_es.store.recorders import COMMANDS_TABLE, CommandRecord, imported_hash
from crm_es.store.settings import KNOWN_SINCE_PREFIX, KnownSince
from crm_es.store.store import HasStore, Store, store_of

INSERT_BATCH: Final = 1000
MARKER: Final = IMPORT_MARKER  # + the file's sha256: "started" until the import is whole


class HistoryImportReport(msgspec.Struct, frozen=True, kw_only=True):
    streams: int
    events: int  # events of the file
    stored: int  # events this run stored (fewer when it completes an interrupted import)
    digest: str
    matches_export: bool
    signed: str  # "verified", "unsigned", or "not checked (no public key given)"


_decoder: Final = msgspec.json.Decoder(ExportLine)


def _lines(path: Path) -> Iterator[tuple[int, ExportLine]]:
    try:
        f = path.open("rb")
    except OSError as e:
        raise ImportRefused(f"cannot read {path}: {e.strerror}") from None
    with f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                try:
                    yield number, _decoder.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError) as e:
                    what = "not a crm-es audit export: " if number == 1 else ""
                    raise ImportRefused(f"{path} line {number}: {what}{e}") from None


class _File:
    """What the first pass learned of a file that passed every check."""

    def __init__(self) -> None:
        self.heads: dict[UUID, Head] = {}
        self.keys: dict[UUID, ExportKey] = {}
        self.proofs: dict[UUID, ExportProof] = {}
        self.checkpoint: ExportCheckpoint | None = None
        self.events = 0
        self.digest = ""
        # command id -> [customer, version of its last event, its events]
        self.commands: dict[str, tuple[UUID, int, int]] = {}
        self.erased: set[UUID] = set()  # customers whose erasure the file holds


def _check_file(store: Store, path: Path) -> _File:
    seen = _File()
    end: ExportEnd | None = None
    # Each customer's state so far (a whole-store export interleaves the streams), to judge its
    # next event as the service would have.
    states: dict[UUID, Customer | None] = {}
    plan = Plan()
    for number, line in _lines(path):
        where = f"{path} line {number}"
        if number == 1 and not isinstance(line, ExportHeader):
            raise ImportRefused(f"{where}: not a crm-es audit export (no header)")
        if end is not None:
            raise ImportRefused(f"{where}: data after the end line")
        if isinstance(line, ExportHeader) and line.format not in (1, EXPORT_FORMAT):
            raise ImportRefused(f"{where}: export format {line.format} is not supported")
        if isinstance(line, ExportCheckpoint):
            seen.checkpoint = line
        elif isinstance(line, ExportKey):
            seen.keys[line.customer_id] = line
        elif isinstance(line, ExportProof):
            seen.proofs[line.customer_id] = line
        elif isinstance(line, ExportEvent):
            head = seen.heads.get(line.customer_id, (0, GENESIS))
            problem = link_problem(line.customer_id, line.version, line.topic, line.state, head)
            if problem is not None:
                raise ImportRefused(f"{where}: customer {problem.customer_id} version "
                                    f"{problem.version}: {problem.problem}")  # fmt: skip
            if line.customer_id == PLAN_ID:  # the plan's own stream: judged on the plan
                plan, command_id = _judged_plan(store, plan, line, where)
            else:
                states[line.customer_id], command_id = _judged(
                    store, states.get(line.customer_id), line, where
                )
            seen.heads[line.customer_id] = (line.version, stored_hash(line.state))
            seen.events += 1
            if command_id is not None:
                _, _, count = seen.commands.get(command_id, (line.customer_id, 0, 0))
                seen.commands[command_id] = (line.customer_id, line.version, count + 1)
        elif isinstance(line, ExportEnd):
            end = line
    if end is None:
        raise ImportRefused(f"{path}: no end line: the export is incomplete")
    if (lone := lone_side(states, store.load)) is not None:
        raise ImportRefused(f"{path}: {lone}")
    seen.erased = {cid for cid, state in states.items() if state is not None and state.erased}
    seen.digest = heads_digest(seen.heads)
    if (end.streams, end.events, end.digest) != (len(seen.heads), seen.events, seen.digest):
        raise ImportRefused(f"{path}: contents do not match the end line's counts and digest")
    return seen


def _judged(
    store: Store, state: Customer | None, line: ExportEvent, where: str
) -> tuple[Customer, str | None]:
    """The customer's state after the event of ``line``, and the event's command id. The event
    must have a known topic, decode (nothing is decrypted) and be one the service could have
    written after ``state``."""
    event = _decoded(store, line, where)
    why = event_problem(state, event) if event.TOPIC not in _PLAN_TOPICS else "a plan event"
    if (event.originator_id, event.originator_version) != (line.customer_id, line.version):
        why = "the event's body names another customer or version than its line"
    elif event.recorded_at > datetime.now(UTC) + FUTURE_SKEW:
        why = "recorded after the time it is imported"
    if why is not None:
        raise ImportRefused(f"{where}: customer {line.customer_id} version {line.version}: "
                            f"the service could not have recorded this: {why}")  # fmt: skip
    evolved = evolve(state, (event,))
    assert evolved is not None
    return evolved, event.command_id


def _decoded(store: Store, line: ExportEvent, where: str) -> ev.CustomerEvent:
    stored = StoredEvent(line.customer_id, line.version, line.topic, line.state)
    try:
        event: ev.CustomerEvent = store.envelope_reader.to_domain_event(stored)
    except Exception as e:  # an unknown topic, or bytes that do not decode
        raise ImportRefused(f"{where}: customer {line.customer_id}: {e}") from None
    return event


_PLAN_TOPICS: Final = frozenset(cls.TOPIC for cls in GOAL_EVENTS)


def _judged_plan(
    store: Store, plan: Plan, line: ExportEvent, where: str
) -> tuple[Plan, str | None]:
    """The plan after the event of ``line`` (one the service could have written after
    ``plan``), and the event's command id."""
    event = _decoded(store, line, where)
    why = plan_event_problem(plan, event)
    if why is None and event.originator_version != line.version:
        why = "the event's body names another version than its line"
    elif why is None and event.recorded_at > datetime.now(UTC) + FUTURE_SKEW:
        why = "recorded after the time it is imported"
    if why is not None:
        raise ImportRefused(f"{where}: the plan's version {line.version}: "
                            f"the service could not have recorded this: {why}")  # fmt: skip
    return evolve_plan(plan, (event,)), event.command_id


def _check_signature(seen: _File, key: Ed25519PublicKey | None, path: Path) -> str:
    """ "verified" when the file's checkpoint is signed by ``key`` and covers its streams."""
    if seen.checkpoint is None:
        return "unsigned"
    if key is None:
        return "not checked (no public key given)"
    anchor = seen.checkpoint.anchor
    problems = signature_problems([anchor], key)
    if problems:
        raise ImportRefused(f"{path}: the export's {problems[0].problem}")
    for cid, (version, _) in seen.heads.items():
        proof = seen.proofs.get(cid)
        if proof is None:
            continue  # registered after the checkpoint: nothing of it is signed
        line = proof.line
        if not proves(line.digest(), proof.steps, anchor.checkpoint.root):
            raise ImportRefused(f"{path}: customer {cid}: its line is not in the signed checkpoint")
        if line.head_version > version:
            raise ImportRefused(f"{path}: customer {cid}: the checkpoint covers version "
                                f"{line.head_version}, the file ends at {version}")  # fmt: skip
    return "verified"


def _check_heads_signed(path: Path, seen: _File) -> None:
    """The event at each signed line's head version has the signed hash (the chain then stands
    for every event before it)."""
    wanted = {cid: p.line for cid, p in seen.proofs.items() if p.line.head_version}
    if not wanted:
        return
    for number, line in _lines(path):
        if isinstance(line, ExportEvent):
            signed = wanted.get(line.customer_id)
            if signed is not None and line.version == signed.head_version:
                if stored_hash(line.state).hex() != signed.head_hash:
                    raise ImportRefused(f"{path} line {number}: customer {line.customer_id} "
                                        f"version {line.version} is not the event the checkpoint "
                                        "covers (altered and re-hashed)")  # fmt: skip
                del wanted[line.customer_id]
    if wanted:
        raise ImportRefused(f"{path}: events the checkpoint covers are missing from the file")


def import_history(
    source: Store | HasStore, path: Path, *, public_key: Ed25519PublicKey | None = None
) -> HistoryImportReport:
    """Import an audit export; see the module doc. A re-run completes an interrupted import."""
    require(source, "import")
    store = store_of(source)
    seen = _check_file(store, path)
    signed = _check_signature(seen, public_key, path)
    if signed == "verified":
        _check_heads_signed(path, seen)
    marker = MARKER + _file_digest(path)
    have = _stored_heads(store, seen, path, resuming=store.settings.get(marker) == "started")
    for cid, key in seen.keys.items():
        current = store.personal_data.key(cid)
        if (current is not None and current != key.key) or (
            key.key is not None and store.personal_data.is_erased(cid)
        ):
            raise ImportRefused(f"customer {cid} already has a different key in this store")
    store.settings.put(marker, "started")
    for cid, key in seen.keys.items():
        store.personal_data.restore(cid, key.key, key.erased)
    stored = _store_missing(store, path, have, marker[len(MARKER) :])
    _store_records(store, seen)
    for cid, key in seen.keys.items():
        if key.erased and cid not in seen.erased:  # erased in the source after the export's cut
            store.settings.put(ERASED_IN_SOURCE + str(cid), store.secrets.seal(str(cid)))
    for cid, (version, _) in seen.heads.items():
        if version >= store.snapshot_interval:
            customer = evolve(None, store.events.get(cid))
            assert customer is not None
            store.take_snapshot(customer)
    store.settings.put(marker, "done")
    imported = {cid: head for cid in seen.heads if (head := _head(store, cid)) is not None}
    digest = heads_digest(imported)
    return HistoryImportReport(
        streams=len(imported),
        events=seen.events,
        stored=stored,
        digest=digest,
        matches_export=digest == seen.digest,
        signed=signed,
    )


def _stored_heads(store: Store, seen: _File, path: Path, *, resuming: bool) -> dict[UUID, Head]:
    """What the target already holds of the file's streams: nothing, or (when an import of the
    same file was interrupted) a prefix of each, which the file must match byte for byte."""
    have = {cid: head for cid in seen.heads if (head := _head(store, cid)) is not None}
    if have and not resuming:
        shown = ", ".join(str(c) for c in sorted(have, key=str)[:5])
        raise ImportRefused(
            f"{len(have)} of the {len(seen.heads)} customers in {path} already have events in "
            f"this store ({shown}{', …' if len(have) > 5 else ''}): import into an empty store"
        )
    for cid, head in have.items():
        if head[0] > seen.heads[cid][0]:
            raise ImportRefused(f"customer {cid} already has more events in this store than "
                                "the file: import into an empty store")  # fmt: skip
    return have


def _head(store: Store, cid: UUID) -> Head | None:
    rows = store.events.select_rows(cid, desc=True, limit=1)
    return (rows[0][0], stored_hash(rows[0][2])) if rows else None


def _store_missing(store: Store, path: Path, have: dict[UUID, Head], digest: str) -> int:
    batch: list[StoredEvent] = []
    stored = 0
    learned = _Learned(store, digest)
    for _, line in _lines(path):
        if not isinstance(line, ExportEvent):
            continue
        present = have.get(line.customer_id)
        if present is not None and line.version <= present[0]:
            if line.version == present[0] and stored_hash(line.state) != present[1]:
                raise ImportRefused(f"customer {line.customer_id} holds other events in this "
                                    "store than the file: import into an empty store")  # fmt: skip
            continue
        batch.append(StoredEvent(line.customer_id, line.version, line.topic, line.state))
        if len(batch) >= INSERT_BATCH:
            learned.insert(batch)
            stored, batch = stored + len(batch), []
    if batch:
        learned.insert(batch)
        stored += len(batch)
    return stored


class _Learned:
    """Stores batches of imported events and keeps, in the store's settings, the range of ids
    of each with the time it was stored: when this store learned of them, which the read models
    use as their knowledge time (the events carry the source's recorded time)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, KNOWN_SINCE_PREFIX + name
        value = store.settings.get(self.name)
        self.ranges = msgspec.json.decode(value, type=KnownSince) if value else []

    def insert(self, batch: list[StoredEvent]) -> None:
        ids = self.store.recorder.insert_events(batch) or []
        if ids:
            self.ranges.append((min(ids), max(ids), iso(datetime.now(UTC))))
            self.store.settings.put(self.name, msgspec.json.encode(self.ranges).decode())


def _store_records(store: Store, seen: _File) -> None:
    """The idempotency records of the imported events' commands, those the store lacks: a
    command re-sent to this store is answered as done (its payload unknown here)."""
    ids = sorted(seen.commands)
    key = store.secrets.idempotency_key
    for start in range(0, len(ids), INSERT_BATCH):
        chunk = ids[start : start + INSERT_BATCH]
        with store.db.reading() as tx:
            marks = ", ".join("?" * len(chunk))
            rows = tx.query(
                f"SELECT command_id FROM {COMMANDS_TABLE} WHERE command_id IN ({marks})", chunk
            )
        present = {str(r[0]) for r in rows}
        records = [
            CommandRecord(command_id, imported_hash(command_id, key), *seen.commands[command_id])
            for command_id in chunk
            if command_id not in present
        ]
        if records:
            store.recorder.insert_events([], commands=records)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def unfinished_imports(store: Store) -> list[str]:
    """Digests of the files whose import was interrupted."""
    return [
        name[len(MARKER) :] for name, value in store.settings.items(MARKER) if value == "started"
    ]
