"""Audit export and import: the full history as JSON Lines, re-importable byte for byte.

File layout, one JSON object per line, tagged by ``kind``::

    {"kind":"header","format":1,"exported_at":…,"store":"sqlite","customer":null,"known_at":null,…}
    {"kind":"key","customer_id":…,"key":"<base64 AES key>"|null,"erased":false}   before its stream
    {"kind":"event","customer_id":…,"version":1,"record":{readable event},"topic":…,"state":"<b64>"}
    …
    {"kind":"end","streams":2,"events":17,"digest":"<sha256 of the stream heads>"}

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
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from crm_es.audit.history import event_record, summarize
from crm_es.audit.verify import SCAN_BATCH, as_uuid, heads_digest, link_problem, verify_stream
from crm_es.domain.customer import evolve
from crm_es.domain.errors import CustomerNotFound, ImportRefused
from crm_es.domain.events import CustomerEvent
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.times import moment
from crm_es.store.codec import GENESIS, stored_hash
from crm_es.store.store import HasStore, Store, store_of

EXPORT_FORMAT: Final = 1
INSERT_BATCH: Final = 1000
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


ExportLine = ExportHeader | ExportKey | ExportEvent | ExportEnd


class HistoryImportReport(msgspec.Struct, frozen=True, kw_only=True):
    streams: int
    events: int
    digest: str
    matches_export: bool


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
    store = store_of(source)
    cut = moment("known_at", known_at)
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
    heads: dict[UUID, tuple[int, bytes]] = {}
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
            key = store.personal_data.key(cid)
            emit(ExportKey(customer_id=cid, key=key, erased=store.personal_data.is_erased(cid)))
        record = {**event_record(event), "summary": summarize(event)}
        version = stored.originator_version
        emit(ExportEvent(customer_id=cid, version=version, record=record, topic=stored.topic,
                         state=stored.state))  # fmt: skip
        heads[cid] = (version, stored_hash(stored.state))
        events += 1
    end = ExportEnd(streams=len(heads), events=events, digest=heads_digest(heads))
    emit(end)
    return end


# --- import -----------------------------------------------------------------------------------

_decoder: Final = msgspec.json.Decoder(ExportLine)


def _lines(path: Path) -> Iterator[tuple[int, ExportLine]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                try:
                    yield number, _decoder.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError) as e:
                    what = "not a crm-es audit export: " if number == 1 else ""
                    raise ImportRefused(f"{path} line {number}: {what}{e}") from None


def _as_stored(line: ExportEvent) -> StoredEvent:
    return StoredEvent(line.customer_id, line.version, line.topic, line.state)


def _check_file(path: Path) -> tuple[dict[UUID, tuple[int, bytes]], dict[UUID, ExportKey], int]:
    """First pass: the file is complete and every chain in it verifies."""
    heads: dict[UUID, tuple[int, bytes]] = {}
    keys: dict[UUID, ExportKey] = {}
    end: ExportEnd | None = None
    events = 0
    for number, line in _lines(path):
        where = f"{path} line {number}"
        if number == 1 and not isinstance(line, ExportHeader):
            raise ImportRefused(f"{where}: not a crm-es audit export (no header)")
        if end is not None:
            raise ImportRefused(f"{where}: data after the end line")
        if isinstance(line, ExportHeader) and line.format != EXPORT_FORMAT:
            raise ImportRefused(f"{where}: export format {line.format} is not supported")
        if isinstance(line, ExportKey):
            keys[line.customer_id] = line
        elif isinstance(line, ExportEvent):
            version, head = heads.get(line.customer_id, (0, GENESIS))
            problem = link_problem(_as_stored(line), version, head)
            if problem is not None:
                raise ImportRefused(
                    f"{where}: customer {problem.customer_id} version {problem.version}: "
                    f"{problem.problem}"
                )
            heads[line.customer_id] = (line.version, stored_hash(line.state))
            events += 1
        elif isinstance(line, ExportEnd):
            end = line
    if end is None:
        raise ImportRefused(f"{path}: no end line: the export is incomplete")
    if (end.streams, end.events, end.digest) != (len(heads), events, heads_digest(heads)):
        raise ImportRefused(f"{path}: contents do not match the end line's counts and digest")
    return heads, keys, events


def import_history(source: Store | HasStore, path: Path) -> HistoryImportReport:
    """Import an audit export into a store that holds none of its streams."""
    store = store_of(source)
    heads, keys, events = _check_file(path)
    existing = [cid for cid in heads if store.recorder.select_events(cid, limit=1)]
    if existing:
        shown = ", ".join(str(c) for c in sorted(existing, key=str)[:5])
        raise ImportRefused(
            f"{len(existing)} of the {len(heads)} customers in {path} already have events in "
            f"this store ({shown}{', …' if len(existing) > 5 else ''}): import into an empty store"
        )
    for cid, key in keys.items():
        current = store.personal_data.key(cid)
        if (current is not None and current != key.key) or (
            key.key is not None and store.personal_data.is_erased(cid)
        ):
            raise ImportRefused(f"customer {cid} already has a different key in this store")
    for cid, key in keys.items():
        store.personal_data.restore(cid, key.key, key.erased)
    batch: list[StoredEvent] = []
    for _, line in _lines(path):
        if isinstance(line, ExportEvent):
            batch.append(_as_stored(line))
            if len(batch) >= INSERT_BATCH:
                store.recorder.insert_events(batch)
                batch = []
    if batch:
        store.recorder.insert_events(batch)
    imported: dict[UUID, tuple[int, bytes]] = {}
    for cid in heads:
        version, head, _, _ = verify_stream(store.recorder.select_events(cid))
        imported[cid] = (version, head)
        if version >= store.snapshot_interval:
            customer = evolve(None, store.events.get(cid))
            assert customer is not None
            store.take_snapshot(customer)
    digest = heads_digest(imported)
    return HistoryImportReport(
        streams=len(imported),
        events=events,
        digest=digest,
        matches_export=digest == heads_digest(heads),
    )
