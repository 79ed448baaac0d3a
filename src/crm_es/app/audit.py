"""The auditor's tools: history with readable summaries, as-of states, integrity verification.

Two time axes (design §4): ``as_of`` is business time (``occurred_at``: what had happened by then)
and ``known_at`` is knowledge time (the recorded ``timestamp``: what we had recorded by then). A
state "as of" either is the stream replayed in stream order with only the qualifying events.

Verification recomputes every hash chain (see :mod:`crm_es.app.mapper` for the stored layout) and
checks every snapshot against the events it summarises. It names the first broken link of each
stream. Deleting the *last* events of a stream leaves a valid, shorter chain: only a remembered
digest of all stream heads (``--expect``) shows that; keep the digest of each verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from crm_es.app.mapper import (
    FORMAT,
    GENESIS,
    HASH_SIZE,
    HEADER_SIZE,
    chain_hash,
    stored_hash,
    stored_prev_hash,
)
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, CustomerSnapshot
from crm_es.domain.errors import CustomerNotFound, CustomerNotYetKnown, InvalidValue
from crm_es.domain.values import format_minor
from crm_es.projections.timefmt import parse_moment

if TYPE_CHECKING:
    from crm_es.app.service import CRM

SCAN_BATCH: Final = 2000
EVENT_NAMES: Final = {ev.event_type_name(cls): cls for cls in ev.EVENT_TYPES.values()}


def moment(
    field: str, value: datetime | date | str | None, *, start_of_day: bool = False
) -> datetime | None:
    """A time argument: a bare date means the end of that day in UTC (or its start, for
    ``--since``); a date-time with an offset means that instant."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        if isinstance(value, date) or (start_of_day and len(value.strip()) == 10):
            day = value if isinstance(value, date) else date.fromisoformat(value.strip())
            start = datetime.combine(day, time(), UTC)
            return start if start_of_day else start + timedelta(days=1, microseconds=-1)
        return parse_moment(value)
    except ValueError:
        raise InvalidValue(field, value, "not an ISO date or date-time") from None


def stream(app: CRM, customer_id: UUID, lte: int | None = None) -> Iterator[ev.CustomerEvent]:
    """A stream's decoded events in version order (snapshots bypassed)."""
    return cast("Iterator[ev.CustomerEvent]", app.events.get(customer_id, lte=lte))


def as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


# --- as-of and history ------------------------------------------------------------------------


def customer_as_of(
    app: CRM,
    customer: str | UUID,
    *,
    as_of: datetime | str | None = None,
    known_at: datetime | str | None = None,
    version: int | None = None,
) -> Customer:
    from crm_es.app.service import customer_id_for_ref

    business, knowledge = moment("as_of", as_of), moment("known_at", known_at)
    state: Customer | None = None
    exists = False
    for event in stream(app, customer_id_for_ref(customer), version):
        exists = True
        late = business is not None and event.occurred_at > business
        if late or (knowledge is not None and event.timestamp > knowledge):
            if state is None:
                break  # registration itself is outside the cut: nothing else can count
            continue
        state = event.mutate(state)
    if state is None:
        if not exists:
            raise CustomerNotFound(str(customer))
        cut = [f"as of {business.isoformat()}" if business else "",
               f"known at {knowledge.isoformat()}" if knowledge else ""]  # fmt: skip
        raise CustomerNotYetKnown(str(customer), " and ".join(c for c in cut if c))
    return state


def event_types(names: Sequence[str]) -> tuple[type[ev.CustomerEvent], ...]:
    """Event classes from their names (``PurchaseRecorded``); unknown names are an error."""
    unknown = [n for n in names if n not in EVENT_NAMES]
    if unknown:
        known = ", ".join(sorted(EVENT_NAMES))
        raise InvalidValue("type", unknown[0], f"unknown event type (known: {known})")
    return tuple(EVENT_NAMES[n] for n in names)


def filtered_history(
    app: CRM,
    customer: str | UUID,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    types: Sequence[str] = (),
) -> Iterator[ev.CustomerEvent]:
    """A customer's events, oldest first, recorded in ``[since, until]`` and of ``types``."""
    start, end = moment("since", since, start_of_day=True), moment("until", until)
    classes = event_types(types)
    for event in app.history(customer):
        if (start and event.timestamp < start) or (end and event.timestamp > end):
            continue
        if classes and not isinstance(event, classes):
            continue
        yield event


def _opt(text: Any, fmt: str = " ({})") -> str:
    return fmt.format(text) if text not in (None, "", msgspec.UNSET) else ""


def _money(minor: int | None, currency: str | None) -> str:
    return f"{format_minor(minor, currency)} {currency}" if minor and currency else ""


def _profile(e: ev.ProfileUpdated) -> str:
    base = set(ev.CustomerEvent.__struct_fields__)
    changed = [
        f"{f}={'∅' if v is None else v}"
        for f in e.__struct_fields__
        if f not in base and (v := getattr(e, f)) is not msgspec.UNSET
    ]
    return "profile updated: " + (", ".join(changed) or "no change")


_SUMMARIES: dict[type[Any], Any] = {
    ev.CustomerRegistered: lambda e: f"registered {e.external_ref or e.originator_id}"
    f"{_opt(e.name, ' {}')} ({e.kind}, {e.category}{_opt(e.region, ', {}')})",
    ev.ProfileUpdated: _profile,
    ev.TagsChanged: lambda e: "tags " + " ".join(
        [f"+{t}" for t in e.added] + [f"-{t}" for t in e.removed]),
    ev.OwnerAssigned: lambda e: f"owner → {e.owner}" if e.owner else "owner unassigned",
    ev.ConsentChanged: lambda e: f"marketing consent {'given' if e.marketing else 'withdrawn'}"
    f"{_opt(e.lawful_basis)}",
    ev.ContactLogged: lambda e: f"{e.direction} {e.channel} contact{_opt(e.summary, ': {}')}"
    f"{_opt(e.outcome, ' → {}')}",
    ev.PurchaseRecorded: lambda e: f"purchase {e.order_id} {format_minor(e.amount, e.currency)} "
    f"{e.currency}{_opt(e.product_category)}",
    ev.PurchaseRefunded: lambda e: f"refund on {e.order_id} {_money(e.amount, e.currency)}",
    ev.ServiceRecorded: lambda e: f"{e.phase} {e.kind} service{_opt(e.order_id, ' for {}')}"
    f"{_opt(e.summary, ': {}')}",
    ev.ComplaintFiled: lambda e: f"complaint {e.complaint_id} filed ({e.severity}, {e.category})",
    ev.ComplaintEscalated: lambda e: f"complaint {e.complaint_id} escalated"
    f"{_opt(e.escalated_to, ' to {}')}",
    ev.ComplaintResolved: lambda e: f"complaint {e.complaint_id} resolved: {e.resolution}"
    f"{_opt(_money(e.compensation, e.compensation_currency), ', compensation {}')}",
    ev.ComplaintReopened: lambda e: f"complaint {e.complaint_id} reopened",
    ev.ComplaintFollowedUp: lambda e: f"complaint {e.complaint_id} followed up: "
    f"{'satisfied' if e.satisfied else 'not satisfied'}",
    ev.SurveyAnswered: lambda e: f"survey {e.survey_id} {e.metric} "
    + (f"{e.score}" if e.score is not None else f"expected {e.expectation}, got {e.performance}")
    + f" (scale {e.scale_min}–{e.scale_max})",
    ev.PointsGranted: lambda e: f"granted {e.points} points{_opt(e.grant_reason)}"
    f"{_opt(e.expires_on, ', expire {}')}",
    ev.PointsRedeemed: lambda e: f"redeemed {e.points} points{_opt(e.reward)}",
    ev.PointsExpired: lambda e: f"{e.points} points expired",
    ev.TierChanged: lambda e: f"tier {e.from_tier} → {e.to_tier}",
    ev.CareTaskScheduled: lambda e: f"care task {e.task_id} scheduled: {e.kind} due {e.due_on}"
    f"{_opt(e.staff, ', {}')}",
    ev.CareTaskCompleted: lambda e: f"care task {e.task_id} completed{_opt(e.outcome, ': {}')}",
    ev.CareTaskCancelled: lambda e: f"care task {e.task_id} cancelled",
    ev.CustomerChurned: lambda e: f"churned: {e.churn_reason}",
    ev.CustomerWonBack: lambda e: "won back",
    ev.PersonalDataErased: lambda e: f"personal data erased at the request of {e.requested_by}"
    f"{_opt(e.legal_basis)}",
}  # fmt: skip


def summarize(event: ev.CustomerEvent) -> str:
    """One line a person can read: ``purchase O-1 129.90 CNY``, ``redeemed 50 points (coupon)``."""
    summary = _SUMMARIES.get(type(event))
    return str(summary(event)) if summary else ev.event_type_name(event)


def history_row(event: ev.CustomerEvent) -> dict[str, Any]:
    """One row of the history table (times in UTC, to the second)."""
    return {
        "version": event.originator_version,
        "recorded (UTC)": event.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "occurred (UTC)": event.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "type": ev.event_type_name(event),
        "actor": event.actor,
        "reason": event.reason,
        "correlation_id": event.correlation_id,
        "summary": summarize(event),
    }


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


def verify(app: CRM, customer: str | UUID | None = None) -> VerifyReport:
    """Recompute the chains of one customer or of the whole store, and check snapshots."""
    from crm_es.app.service import customer_id_for_ref

    heads: dict[UUID, tuple[int, bytes]] = {}
    problems: dict[UUID, Problem] = {}
    erased: set[UUID] = set()
    events = 0
    if customer is not None:
        cid = customer_id_for_ref(customer)
        records = app.recorder.select_events(cid)
        if not records:
            raise CustomerNotFound(str(customer))
        erased.update(cid for r in records if r.topic == ev.PersonalDataErased.TOPIC)
        version, head, events, problem = verify_stream(records)
        heads[cid] = (version, head)
        if problem:
            problems[cid] = problem
        streams = [cid]
    else:
        events = _scan_all(app, heads, problems, erased)
        streams = sorted(heads, key=str)
    candidates = streams if customer is not None else _streams_with_snapshots(app, streams)
    snapshots = _check_snapshots(app, [c for c in candidates if c not in problems], problems)
    for cid in sorted(erased, key=str):
        if cid not in problems and app.personal_data.key(cid) is not None:
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
    app: CRM,
    heads: dict[UUID, tuple[int, bytes]],
    problems: dict[UUID, Problem],
    erased: set[UUID],
) -> int:
    """One pass over every notification; streams that look broken are re-read in version order
    (the ground truth), so the result never depends on notification order."""
    suspects: set[UUID] = set()
    events, start = 0, 1
    while notifications := app.recorder.select_notifications(start=start, limit=SCAN_BATCH):
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
        version, head, _, problem = verify_stream(app.recorder.select_events(cid))
        heads[cid] = (version, head)
        if problem is not None:
            problems[cid] = problem
    return events


def _check_snapshots(app: CRM, streams: list[UUID], problems: dict[UUID, Problem]) -> int:
    """Each snapshot must equal the replay of its stream up to its version."""
    if app.snapshots is None:
        return 0
    checked = 0
    for cid in streams:
        pending = {s.originator_version: s for s in app.snapshots.recorder.select_events(cid)}
        if not pending:
            continue
        state: Customer | None = None
        for event in stream(app, cid, max(pending)):
            state = event.mutate(state)
            stored = pending.pop(event.originator_version, None)
            if stored is None:
                continue
            checked += 1
            problem = _snapshot_problem(app, stored, state)
            if problem and cid not in problems:
                problems[cid] = Problem(str(cid), stored.originator_version, problem)
        for version in pending:  # beyond the last event
            problems.setdefault(cid, Problem(str(cid), version, "snapshot of a missing version"))
    return checked


def _snapshot_problem(app: CRM, stored: StoredEvent, replayed: Customer | None) -> str | None:
    state = stored.state
    own = chain_hash(as_uuid(stored.originator_id), stored.originator_version, stored.topic,
                     state[:-HASH_SIZE])  # fmt: skip
    if len(state) < HEADER_SIZE + HASH_SIZE or own != stored_hash(state):
        return "snapshot bytes were altered: its hash does not match"
    try:
        snapshot = app.mapper.to_domain_event(stored)
    except Exception as e:
        return f"snapshot cannot be read: {e}"
    if not isinstance(snapshot, CustomerSnapshot) or snapshot.schema != CustomerSnapshot.SCHEMA:
        return None  # an older snapshot layout: the repository does not trust it either
    if snapshot.mutate(None) != replayed:
        return "snapshot differs from the replay of its events"
    return None


def _streams_with_snapshots(app: CRM, streams: list[UUID]) -> list[UUID]:
    from crm_es.app.database import Database

    assert app.snapshots is not None
    table = app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
    db = Database(app.store)
    try:
        with db.reading() as tx:
            rows = tx.query(f"SELECT DISTINCT originator_id FROM {table}")
    finally:
        db.close()
    wanted = set(streams)
    return sorted((u for u in (UUID(str(r[0])) for r in rows) if u in wanted), key=str)
