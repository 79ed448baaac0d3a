"""Audit export: the full history as JSON Lines, re-importable byte for byte (the import is
:mod:`.importer`).

File layout, one JSON object per line, tagged by ``kind``::

    {"kind":"header","format":2,"exported_at":…,"store":"sqlite","customer":null,"known_at":null,…}
    {"kind":"checkpoint","anchor":{signed checkpoint}}              the source's latest, if any
    {"kind":"key","customer_id":…,"key":"<base64 AES key>"|null,"erased":false}   before its stream
    {"kind":"proof","customer_id":…,"line":[…],"steps":[…]}   its line is in the checkpoint's tree
    {"kind":"event","customer_id":…,"version":1,"record":{readable event},"topic":…,"state":"<b64>"}
    …
    {"kind":"end","streams":2,"events":17,"digest":"<sha256 of the stream heads>"}

A store with signed checkpoints (``crm-es audit anchor``) exports its latest one, and for each
customer it covers the customer's line and the Merkle proof that the signed root covers it: an
importer holding the public key can then prove that each stream, up to that checkpoint, is what
the source store recorded, not a file re-hashed by whoever wrote it.

``record`` is what ``crm-es history`` prints (envelope, fields, summary) for people; ``topic`` and
``state`` are the stored row exactly, so an import writes byte-identical rows and the hash chains
and the digest come out the same.

Key material. The file carries each customer's raw data key (unwrapped, even when the source store
wraps keys with a master key; the target wraps them again with its own). Without the keys the
imported ciphertext would read as ``[erased]`` and re-encrypting would change the bytes and break
the chains. Including them exposes nothing the file does not already hold: ``record`` shows the
personal data in clear for every customer who is not erased. The export is therefore personal data
itself and must be stored, shared and deleted as such (an erasure after the export does not reach
copies of the file). Erased customers have no key (``null``, ``erased: true``): their export holds
only ciphertext, and the import recreates the tombstone so they stay erased.

``--known-at T`` exports, per stream, the events recorded by T (the stream's prefix up to the first
event recorded later), with the keys as they are *now*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from crm_es.audit.chains import Head, heads_digest
from crm_es.audit.checkpoints import Anchor, Line, kept_anchor
from crm_es.audit.history import event_record, summarize
from crm_es.audit.merkle import MerkleTree, Step
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.events import PERSONAL_PATHS, CustomerEvent
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.policy import require
from crm_es.domain.times import moment
from crm_es.store.codec import stored_hash
from crm_es.store.store import HasStore, Store, store_of

EXPORT_FORMAT: Final = 2
SCAN_BATCH: Final = 2000
PERSONAL_DATA_NOTE: Final = (
    "holds personal data in clear and the keys that decrypt it: handle as personal data"
)


class ExportHeader(msgspec.Struct, tag="header", tag_field="kind", kw_only=True):
    format: int
    exported_at: str
    store: str
    customer: str | None
    known_at: str | None
    note: str = PERSONAL_DATA_NOTE


class ExportKey(msgspec.Struct, tag="key", tag_field="kind", kw_only=True):
    customer_id: UUID
    key: bytes | None
    erased: bool


class ExportCheckpoint(msgspec.Struct, tag="checkpoint", tag_field="kind", kw_only=True):
    anchor: Anchor


class ExportProof(msgspec.Struct, tag="proof", tag_field="kind", kw_only=True):
    customer_id: UUID
    line: Line
    steps: list[Step]


class ExportEvent(msgspec.Struct, tag="event", tag_field="kind", kw_only=True):
    customer_id: UUID
    version: int
    record: dict[str, Any]
    topic: str
    state: bytes


class ExportEnd(msgspec.Struct, tag="end", tag_field="kind", kw_only=True):
    streams: int
    events: int
    digest: str


ExportLine = ExportHeader | ExportCheckpoint | ExportKey | ExportProof | ExportEvent | ExportEnd


def as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


# --- export -----------------------------------------------------------------------------------


def _stored(store: Store, customer: str | UUID | None) -> Iterator[StoredEvent]:
    """The stored rows to export; an unknown customer fails before anything is written."""
    if customer is None:
        return _all_stored(store)
    records = store.recorder.select_events(customer_id_for_ref(customer))
    if not records:
        raise CustomerNotFound(str(customer))
    return iter(records)


def _all_stored(store: Store) -> Iterator[StoredEvent]:
    start = 1
    while notifications := store.recorder.select_notifications(start=start, limit=SCAN_BATCH):
        yield from notifications
        start = notifications[-1].id + 1


def export_history(
    source: Store | HasStore,
    write: Callable[[bytes], Any],
    *,
    customer: str | UUID | None = None,
    known_at: datetime | str | None = None,
) -> ExportEnd:
    """Write the history of one customer (or all) as export lines; returns the trailer."""
    require(source, "export")
    store = store_of(source)
    cut = moment("known_at", known_at, tz=store.timezone)
    stored_rows = _stored(store, customer)
    encoder = msgspec.json.Encoder()

    def emit(line: ExportLine) -> None:
        write(encoder.encode(line) + b"\n")

    emit(
        ExportHeader(
            format=EXPORT_FORMAT,
            exported_at=datetime.now(UTC).isoformat(),
            store=store.config.kind,
            customer=None if customer is None else str(customer),
            known_at=None if cut is None else cut.isoformat(),
        )
    )
    # A service opened for a principal logs the export as a read of every personal value.
    log_reads = getattr(source, "log_reads", None)
    proofs = _Proofs(store)
    if proofs.anchor is not None:
        emit(ExportCheckpoint(anchor=proofs.anchor))
    heads: dict[UUID, Head] = {}
    stopped: set[UUID] = set()
    events = 0
    for stored in stored_rows:
        cid = as_uuid(stored.originator_id)
        if cid in stopped:
            continue
        event: CustomerEvent = store.codec.to_domain_event(stored)
        if cut is not None and event.recorded_at > cut:
            stopped.add(cid)
            continue
        if cid not in heads:
            if log_reads is not None:  # before its key and events are handed out
                log_reads([cid], "export", PERSONAL_PATHS, None)
            key = store.personal_data.key(cid)
            emit(ExportKey(customer_id=cid, key=key, erased=store.personal_data.is_erased(cid)))
            if (proof := proofs.of(cid)) is not None:
                emit(proof)
        record = {**event_record(event), "summary": summarize(event)}
        version = stored.originator_version
        emit(ExportEvent(customer_id=cid, version=version, record=record, topic=stored.topic,
                         state=stored.state))  # fmt: skip
        heads[cid] = (version, stored_hash(stored.state))
        events += 1
    end = ExportEnd(streams=len(heads), events=events, digest=heads_digest(heads))
    emit(end)
    return end


class _Proofs:
    """The source's latest checkpoint and, per customer, its line and inclusion proof."""

    def __init__(self, store: Store) -> None:
        kept = kept_anchor(store)
        self.anchor = kept[0] if kept is not None else None
        lines = kept[1] if kept is not None else []
        self._index = {line.customer_id: i for i, line in enumerate(lines)}
        self._lines = lines
        self._tree = MerkleTree([line.digest() for line in lines])

    def of(self, customer_id: UUID) -> ExportProof | None:
        index = self._index.get(str(customer_id))
        if index is None:
            return None
        line = self._lines[index]
        return ExportProof(customer_id=customer_id, line=line, steps=self._tree.proof(index))
