"""Integrity verification: everything the store holds about each customer, checked against the
hash chain of its events.

For each customer (:mod:`.ledger` reads them all in one consistent pass):

* the chain links up from version 1 (:mod:`.chains`): an altered byte, a deleted, swapped or
  rewritten event is named by customer and version;
* every snapshot is sealed with the store's secret, bound to the stored event at its version
  and equal to the replay of the events up to it (all of them, or a random sample); a snapshot
  of a version the stream does not have, or of a customer without a stream, is named;
* the key agrees with the history (:mod:`.key_audit`): an erased customer has none, any other
  customer whose events hold encrypted values has one this store wrapped for it, and it opens
  those values;
* every command whose events the stream holds has its idempotency record, naming those events;
* each side of a merge has its twin in the other customer's stream (:mod:`.merge_twins`).

For the whole store, the chains of the access log (:mod:`.access_chain`) and of the grants log
(:mod:`.grants_chain`) too.

Deleting the *last* events of a stream leaves a valid, shorter chain, and deleting a record of a
command that changed nothing leaves no trace in the events: signed checkpoints (:mod:`.checkpoints`,
``crm-es audit anchor``) are what catch those. The report's digest covers every stream head.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from itertools import pairwise
from uuid import UUID

import msgspec

from crm_es.audit.access_chain import chain_problems
from crm_es.audit.chains import Head, Problem, heads_digest, verify_stream
from crm_es.audit.grants_chain import chain_problems as grants_chain_problems
from crm_es.audit.key_audit import erased_in_source, key_problems
from crm_es.audit.ledger import CustomerFacts, EventRow, SnapshotRow, customer_facts
from crm_es.audit.login_audit import TrustedLogins, actor_problems, envelope_of
from crm_es.audit.merge_twins import MergeTwins
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, evolve, without_personal_data
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.policy import require
from crm_es.domain.snapshot import CustomerSnapshot
from crm_es.store.codec import (
    GENESIS,
    HASH_SIZE,
    chain_hash,
    snapshot_seal_ok,
    stored_hash,
    stored_prev_hash,
)
from crm_es.store.recorders import payload_hash_known
from crm_es.store.store import HasStore, Store, store_of
from crm_es.store.wipe import wipe_pending

# A store setting named so, with the value "started", is an audit import under way or
# interrupted (:mod:`.importer`).
IMPORT_MARKER = "audit_import:"
Observer = Callable[[CustomerFacts], None]


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    customer_id: str | None
    streams: int
    events: int
    snapshots: int  # snapshots checked against the replay of their events
    digest: str  # sha256 over the sorted (customer_id, head version, head hash) of every stream
    problems: list[Problem]


def verify(
    source: Store | HasStore,
    customer: str | UUID | None = None,
    *,
    snapshot_sample: int | None = None,
    observers: Sequence[Observer] = (),
) -> VerifyReport:
    """Check one customer, or the whole store; ``snapshot_sample``: replay only that many
    randomly chosen snapshots (all by default). Each customer's facts are also handed to
    ``observers`` (checkpoint verification reads the same pass)."""
    require(source, "verify")
    store = store_of(source)
    cid = None if customer is None else customer_id_for_ref(customer)
    heads: dict[UUID, Head] = {}
    problems: list[Problem] = []
    events = snapshots = 0
    replayed = _Sample(snapshot_sample)
    erased_elsewhere = erased_in_source(store)
    twins = MergeTwins(store)
    with store.db.reading() as tx:
        trusted = TrustedLogins(tx, store.events_table) if tx.postgres else None
        for facts in customer_facts(store, tx, cid):
            twins(facts)
            for observe in observers:
                observe(facts)
            head, found = _check(store, facts, replayed, erased_elsewhere, trusted)
            if facts.events:
                heads[facts.customer_id] = head
            problems.extend(found)
            events += len(facts.events)
            snapshots += replayed.checked_last
        # One customer: the other side of each of its merges is read for its twin too.
        twins.read_others(lambda other: customer_facts(store, tx, other))
        problems.extend(twins.problems())
        if cid is None:  # who read whose personal data: the store's, not a customer's
            problems.extend(chain_problems(tx))
            problems.extend(grants_chain_problems(tx))  # who holds which role
    if cid is not None and cid not in heads and not problems:
        raise CustomerNotFound(str(customer))
    if wipe_pending(store.db):
        why = ("an erasure's wipe is pending: a reader that started before it may still hold "
               "the erased bytes; run `crm-es maintain` once it has ended")  # fmt: skip
        problems.append(Problem("", 0, why))
    for name, value in store.settings.items(IMPORT_MARKER):
        if value == "started":
            digest = name[len(IMPORT_MARKER) :]
            why = f"an audit import was interrupted (file sha256 {digest}): run it again"
            problems.append(Problem("", 0, why))
    return VerifyReport(
        ok=not problems,
        customer_id=None if cid is None else str(cid),
        streams=len(heads),
        events=events,
        snapshots=snapshots,
        digest=heads_digest(heads),
        problems=problems,
    )


class _Sample:
    """Which customers' snapshots are replayed: all, or about ``size`` chosen at random."""

    def __init__(self, size: int | None) -> None:
        self.size, self.seen, self.checked_last = size, 0, 0
        self._random = random.Random()
        self._taken = 0

    def take(self) -> bool:
        """Reservoir-style: each customer with snapshots is replayed with a falling chance,
        so about ``size`` of them are, whatever their number."""
        if self.size is None:
            return True
        self.seen += 1
        if self._taken < self.size and self._random.random() < self.size / max(self.seen, 1):
            self._taken += 1
            return True
        return False


def _check(
    store: Store,
    facts: CustomerFacts,
    sample: _Sample,
    erased_elsewhere: frozenset[str],
    trusted: TrustedLogins | None,
) -> tuple[Head, list[Problem]]:
    cid = facts.customer_id
    rows = [(e.version, e.topic, e.state) for e in facts.events]
    head, _, broken = verify_stream(cid, rows)
    problems = [broken] if broken is not None else []
    problems += _order_problems(facts)
    sample.checked_last = 0
    if facts.snapshots:
        problems += _snapshot_problems(store, facts, head, sample)
    if broken is None:  # the rules below read the events: only when they are the stored ones
        problems += key_problems(store, facts, erased_elsewhere)
        problems += _record_problems(store, facts)
        if trusted is not None:
            problems += actor_problems(store, facts, trusted)
    return head, problems


def _order_problems(facts: CustomerFacts) -> list[Problem]:
    """A stream's events were stored in version order: their notification ids (the order the
    projections and exports read them in) grow with their versions."""
    for before, after in pairwise(facts.events):
        if after.notification_id <= before.notification_id:
            why = (f"version {after.version} is stored before version {before.version} "
                   "(notification ids reordered behind the store's back)")  # fmt: skip
            return [Problem(str(facts.customer_id), after.version, why)]
    return []


def _snapshot_problems(
    store: Store, facts: CustomerFacts, head: Head, sample: _Sample
) -> list[Problem]:
    cid, last = str(facts.customer_id), head[0]
    if not facts.events:
        why = "a snapshot of a customer who has no events: it exists only as a snapshot"
        return [Problem(cid, facts.snapshots[0].version, why + " (forged, or its events deleted)")]
    hashes = {e.version: stored_hash(e.state) for e in facts.events}
    problems, current = [], []
    for snap in facts.snapshots:
        if snap.version > last or snap.version not in hashes:
            why = f"a snapshot of version {snap.version}, which the stream does not have"
            problems.append(Problem(cid, snap.version, f"{why} (it ends at {last})"))
        elif snapshot_seal_ok(
            store.secrets.snapshot_key, facts.customer_id, snap.version, snap.topic, snap.state
        ):
            if stored_prev_hash(snap.state) != hashes[snap.version]:
                problems.append(Problem(cid, snap.version, "the snapshot is not of the stored "
                                        "event at its version"))  # fmt: skip
            else:
                current.append(snap)
        elif not _older_snapshot(store, facts.customer_id, snap):
            problems.append(Problem(cid, snap.version, "snapshot forged or altered: its seal "
                                    "does not verify"))  # fmt: skip
    if current and sample.take():
        problems += _replay_problems(store, facts, current)
        sample.checked_last = len(current)
    return problems


def _older_snapshot(store: Store, customer_id: UUID, snap: SnapshotRow) -> bool:
    """A snapshot written before snapshots were sealed (hashed like an event, of an older
    schema): never used, so nothing it says can mislead."""
    own = chain_hash(customer_id, snap.version, snap.topic, snap.state[:-HASH_SIZE])
    if own != stored_hash(snap.state) or stored_prev_hash(snap.state) != GENESIS:
        return False
    try:
        decoded = store.envelope_reader.decode_state(snap.topic, snap.state)
    except Exception:
        return False
    return isinstance(decoded, CustomerSnapshot) and decoded.schema < CustomerSnapshot.SCHEMA


def _replay_problems(
    store: Store, facts: CustomerFacts, snapshots: list[SnapshotRow]
) -> list[Problem]:
    """Each snapshot must equal the replay of the stream up to its version."""
    cid, problems = facts.customer_id, []
    due = {s.version: s for s in snapshots}
    erased = any(e.topic == ev.PersonalDataErased.TOPIC for e in facts.events)
    state: Customer | None = None
    for row in facts.events:
        if row.version > max(due):
            break
        state = evolve(state, (store.codec.decode_state(row.topic, row.state),))
        snap = due.get(row.version)
        if snap is None or state is None:
            continue
        restored = store.codec.decode_state(snap.topic, snap.state)
        if not isinstance(restored, CustomerSnapshot):
            problems.append(Problem(str(cid), snap.version, "the snapshot cannot be read"))
            continue
        mine, theirs = restored.restore(), state
        if erased:  # personal values all read [erased]: only the rest can be compared
            mine, theirs = without_personal_data(mine), without_personal_data(theirs)
        if mine != theirs:
            problems.append(Problem(str(cid), snap.version, "the snapshot differs from the "
                                    "replay of its events"))  # fmt: skip
    return problems


def _record_problems(store: Store, facts: CustomerFacts) -> list[Problem]:
    """Each command whose events the stream holds has its record, naming those events."""
    cid = str(facts.customer_id)
    commands: dict[str, list[EventRow]] = {}
    ids = _command_ids(store, facts)
    for row, command_id in zip(facts.events, ids, strict=True):
        if command_id is not None:
            commands.setdefault(command_id, []).append(row)
    records = {r.command_id: r for r in facts.records}
    problems = []
    for command_id, rows in commands.items():
        record = records.get(command_id)
        if record is None:
            problems.append(Problem(cid, rows[-1].version, f"the idempotency record of command "
                                    f"{command_id!r} is missing"))  # fmt: skip
        elif (record.version, record.events) != (rows[-1].version, len(rows)):
            problems.append(Problem(cid, rows[-1].version, f"the idempotency record of command "
                                    f"{command_id!r} does not name its events"))  # fmt: skip
    for record in facts.records:
        if not payload_hash_known(record.payload_hash):
            problems.append(Problem(cid, record.version, f"the idempotency record of command "
                                    f"{record.command_id!r} has a payload hash this store "
                                    "never writes (planted)"))  # fmt: skip
        if record.events and record.command_id not in commands:
            problems.append(Problem(cid, record.version, f"an idempotency record of command "
                                    f"{record.command_id!r}, whose events the stream does not "
                                    "have"))  # fmt: skip
    return problems


def _command_ids(store: Store, facts: CustomerFacts) -> list[str | None]:
    """The command id in each event's envelope (nothing decrypted)."""
    return [envelope_of(store, row).command_id for row in facts.events]
