"""Integrity verification: recompute every hash chain, check every snapshot.

Verification recomputes every hash chain (see :mod:`crm_es.store.codec` for the stored layout) and
checks every snapshot against the events it summarises. It names the first broken link of each
stream. Deleting the *last* events of a stream leaves a valid, shorter chain: only a remembered
digest of all stream heads (``--expect``) shows that; keep the digest of each verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Final, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, CustomerSnapshot, evolve, without_personal_data
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.codec import (
    FORMAT,
    GENESIS,
    HASH_SIZE,
    HEADER_SIZE,
    chain_hash,
    stored_hash,
    stored_prev_hash,
)
from crm_es.store.database import Database
from crm_es.store.store import HasStore, Store, store_of

SCAN_BATCH: Final = 2000


def stream(store: Store, customer_id: UUID, lte: int | None = None) -> Iterator[ev.CustomerEvent]:
    """A stream's decoded events in version order (snapshots bypassed)."""
    return cast("Iterator[ev.CustomerEvent]", store.events.get(customer_id, lte=lte))


def as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


# --- verification -----------------------------------------------------------------------------


class Problem(msgspec.Struct, frozen=True):
    customer_id: str
    version: int
    problem: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    customer_id: str | None
    streams: int
    events: int
    snapshots: int
    digest: str  # sha256 over the sorted (customer_id, head version, head hash) of every stream
    problems: list[Problem]


def link_problem(stored: StoredEvent, prev_version: int, prev_hash: bytes) -> Problem | None:
    """What is wrong with ``stored`` as the successor of (prev_version, prev_hash), if anything."""
    cid, version, state = str(stored.originator_id), stored.originator_version, stored.state
    if version != prev_version + 1:
        what = "is missing" if version > prev_version else "is out of order"
        return Problem(cid, prev_version + 1, f"version {prev_version + 1} {what} "
                       f"(found version {version} after {prev_version})")  # fmt: skip
    if len(state) < HEADER_SIZE + HASH_SIZE or state[0] != FORMAT:
        return Problem(cid, version, "stored bytes are malformed")
    own = chain_hash(as_uuid(stored.originator_id), version, stored.topic, state[:-HASH_SIZE])
    if own != stored_hash(state):
        return Problem(cid, version, "stored bytes were altered: the event's hash does not match")
    if stored_prev_hash(state) != prev_hash:
        return Problem(cid, version, "does not link to the previous event (replaced or reordered)")
    return None


def verify_stream(records: Iterable[StoredEvent]) -> tuple[int, bytes, int, Problem | None]:
    """(head version, head hash, events, first problem) of one stream read in version order."""
    version, head, count = 0, GENESIS, 0
    for stored in records:
        count += 1
        problem = link_problem(stored, version, head)
        if problem is not None:
            return stored.originator_version, stored_hash(stored.state), count, problem
        version, head = stored.originator_version, stored_hash(stored.state)
    return version, head, count, None


def heads_digest(heads: dict[UUID, tuple[int, bytes]]) -> str:
    h = hashlib.sha256()
    for cid, (version, head) in sorted(heads.items(), key=lambda item: str(item[0])):
        h.update(f"{cid} {version} {head.hex()}\n".encode())
    return h.hexdigest()


def verify(source: Store | HasStore, customer: str | UUID | None = None) -> VerifyReport:
    """Recompute the chains of one customer or of the whole store, and check snapshots."""
    store = store_of(source)
    heads: dict[UUID, tuple[int, bytes]] = {}
    problems: dict[UUID, Problem] = {}
    erased: set[UUID] = set()
    events = 0
    if customer is not None:
        cid = customer_id_for_ref(customer)
        records = store.recorder.select_events(cid)
        if not records:
            raise CustomerNotFound(str(customer))
        erased.update(cid for r in records if r.topic == ev.PersonalDataErased.TOPIC)
        version, head, events, problem = verify_stream(records)
        heads[cid] = (version, head)
        if problem:
            problems[cid] = problem
        streams = [cid]
    else:
        events = _scan_all(store, heads, problems, erased)
        streams = sorted(heads, key=str)
    candidates = streams if customer is not None else _streams_with_snapshots(store, streams)
    snapshots = _check_snapshots(store, [c for c in candidates if c not in problems], problems)
    for cid in sorted(erased, key=str):
        if cid not in problems and store.personal_data.key(cid) is not None:
            problems[cid] = Problem(str(cid), heads[cid][0], "personal data erasure unfinished: "
                                    "the key still exists (run `crm-es erase` again)")  # fmt: skip
    ordered = [problems[c] for c in sorted(problems, key=str)]
    return VerifyReport(
        ok=not ordered,
        customer_id=None if customer is None else str(streams[0]),
        streams=len(heads),
        events=events,
        snapshots=snapshots,
        digest=heads_digest(heads),
        problems=ordered,
    )


def _scan_all(
    store: Store,
    heads: dict[UUID, tuple[int, bytes]],
    problems: dict[UUID, Problem],
    erased: set[UUID],
) -> int:
    """One pass over every notification; streams that look broken are re-read in version order
    (the ground truth), so the result never depends on notification order."""
    suspects: set[UUID] = set()
    events, start = 0, 1
    while notifications := store.recorder.select_notifications(start=start, limit=SCAN_BATCH):
        for n in notifications:
            events += 1
            cid = as_uuid(n.originator_id)
            if n.topic == ev.PersonalDataErased.TOPIC:
                erased.add(cid)
            if cid in suspects:
                continue
            version, head = heads.get(cid, (0, GENESIS))
            if link_problem(n, version, head) is not None:
                suspects.add(cid)
                continue
            heads[cid] = (n.originator_version, stored_hash(n.state))
        start = notifications[-1].id + 1
    for cid in suspects:
        version, head, _, problem = verify_stream(store.recorder.select_events(cid))
        heads[cid] = (version, head)
        if problem is not None:
            problems[cid] = problem
    return events


def _check_snapshots(store: Store, streams: list[UUID], problems: dict[UUID, Problem]) -> int:
    """Each snapshot must equal the replay of its stream up to its version."""
    if store.snapshots is None:
        return 0
    checked = 0
    for cid in streams:
        pending = {s.originator_version: s for s in store.snapshots.recorder.select_events(cid)}
        if not pending:
            continue
        state: Customer | None = None
        for event in stream(store, cid, max(pending)):
            state = evolve(state, (event,))
            stored = pending.pop(event.originator_version, None)
            if stored is None:
                continue
            checked += 1
            problem = _snapshot_problem(store, stored, state)
            if problem and cid not in problems:
                problems[cid] = Problem(str(cid), stored.originator_version, problem)
        for version in pending:  # beyond the last event
            problems.setdefault(cid, Problem(str(cid), version, "snapshot of a missing version"))
    return checked


def _snapshot_problem(store: Store, stored: StoredEvent, replayed: Customer | None) -> str | None:
    state = stored.state
    own = chain_hash(as_uuid(stored.originator_id), stored.originator_version, stored.topic,
                     state[:-HASH_SIZE])  # fmt: skip
    if len(state) < HEADER_SIZE + HASH_SIZE or own != stored_hash(state):
        return "snapshot bytes were altered: its hash does not match"
    try:
        snapshot = store.codec.to_domain_event(stored)
    except Exception as e:
        return f"snapshot cannot be read: {e}"
    if not isinstance(snapshot, CustomerSnapshot) or snapshot.schema != CustomerSnapshot.SCHEMA:
        return None  # an older snapshot layout: the repository does not trust it either
    restored = snapshot.restore()
    if replayed is not None and store.personal_data.is_erased(replayed.id):
        # Personal values all read [erased]: only the rest of the state can be compared.
        restored, replayed = without_personal_data(restored), without_personal_data(replayed)
    if restored != replayed:
        return "snapshot differs from the replay of its events"
    return None


def _streams_with_snapshots(store: Store, streams: list[UUID]) -> list[UUID]:
    assert store.snapshots is not None
    table = store.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
    db = Database(store.config)
    try:
        with db.reading() as tx:
            rows = tx.query(f"SELECT DISTINCT originator_id FROM {table}")
    finally:
        db.close()
    wanted = set(streams)
    return sorted((u for u in (UUID(str(r[0])) for r in rows) if u in wanted), key=str)
