"""Running many commands with one transaction per chunk: the path of imports and bulk loads.

``CRM.execute_many`` delegates here. A chunk holds the locks of all its customers (so it can
decide on the cached states themselves, no copies), decides each command in order on the state
left by the previous ones, and stores all new events and idempotency records in ONE transaction.
A failed command stores nothing and does not stop the others; if the transaction collides with
another writer, nothing of the chunk was stored and its commands run again one by one.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from crm_es.app.recorders import CommandRecord
from crm_es.app.results import CommandResult, command_record
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer
from crm_es.domain.decisions import Envelope, decide
from crm_es.domain.errors import CrmError, CustomerAlreadyRegistered
from crm_es.domain.events import CustomerEvent

if TYPE_CHECKING:
    from crm_es.app.service import CRM

Outcome = "CommandResult | CrmError | msgspec.ValidationError"

_gc_pause = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk runs (threads nest safely).

    A chunk allocates a few tracked objects per event (rows, stored events) that live until its
    commit; the collector then rescans them, and the whole customer cache, over and over: a
    fifth of an import's time, measured. Nothing a chunk makes forms a cycle, so reference
    counting frees all of it; the collector resumes when the last chunk ends.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_pause:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_pause:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def execute_many(
    app: CRM, commands: Iterable[cmd.Command], *, chunk_size: int = 500, validated: bool = False
) -> Iterator[CommandResult | CrmError | msgspec.ValidationError]:
    """Run many commands, saving each chunk's events in ONE transaction.

    Yields, in order, a result or the error of each command; a failed command stores nothing
    and does not stop the others. Much faster than ``execute`` in a loop (one commit per
    chunk instead of per command): the path for imports, the demo and bulk loads.
    Pass ``validated=True`` for commands that came out of msgspec decoding.
    """
    chunk: list[cmd.Command] = []
    for command in commands:
        chunk.append(command)
        if len(chunk) >= chunk_size:
            yield from _execute_chunk(app, chunk, validated)
            chunk = []
    if chunk:
        yield from _execute_chunk(app, chunk, validated)


def _execute_chunk(
    app: CRM, commands: list[cmd.Command], validated: bool
) -> list[CommandResult | CrmError | msgspec.ValidationError]:
    targets = [_target(app, c) for c in commands]
    # Hold the locks of every customer in the chunk (in one order: no deadlock), so the chunk
    # can decide on the cached states themselves instead of copies.
    with app.command_cache.locks({t for t in targets if t is not None}), gc_paused():
        try:
            return _execute_locked_chunk(app, commands, targets, validated)
        except BaseException:
            for target in targets:  # states may hold events that were never stored
                if target is not None:
                    app.command_cache.evict(target)
            raise


def _target(app: CRM, command: cmd.Command) -> UUID | None:
    try:
        return app.customer_id_for(command)
    except (AssertionError, AttributeError, TypeError, ValueError):
        return None  # a malformed command: its validation error is reported in order


def _execute_locked_chunk(
    app: CRM, commands: list[cmd.Command], targets: list[UUID | None], validated: bool
) -> list[CommandResult | CrmError | msgspec.ValidationError]:
    outcomes: list[CommandResult | CrmError | msgspec.ValidationError] = []
    ids = [c.command_id for c in commands if c.command_id is not None]
    done = app.command_log.select_commands(ids) if ids else {}
    records: list[CommandRecord] = []
    states: dict[UUID, Customer | None] = {}
    from_cache: set[UUID] = set()
    first_versions: dict[UUID, int] = {}
    pending: list[CustomerEvent] = []
    # One recorded time for the chunk: its events commit together, in one transaction.
    now, actor = app.clock(), app.default_actor
    for command, target in zip(commands, targets, strict=True):
        try:
            checked = command if validated else cmd.validate_command(command)
            if checked.command_id is not None and checked.command_id in done:
                outcomes.append(app._replayed(checked, done[checked.command_id]))
                continue
            customer_id = target if target is not None else app.customer_id_for(checked)
            if customer_id not in states:
                # Cached states are changed in place: if the save fails they are evicted.
                cached = app.command_cache.get(customer_id)
                if cached is not None:
                    from_cache.add(customer_id)
                states[customer_id] = cached or app._load(customer_id)
            customer = states[customer_id]
            if isinstance(checked, cmd.RegisterCustomer) and customer is not None:
                raise CustomerAlreadyRegistered(checked.external_ref or "", customer_id)
            envelope = Envelope.for_command(checked, now, actor)
            # A cached state this chunk has not changed yet may be stale: a refusal or a no-op
            # decided on it is judged again on the stored state, as a single command's is.
            recheck = customer_id in from_cache and customer_id not in first_versions
            try:
                new_events = decide(customer, checked, envelope, customer_id)
            except CrmError:
                if not recheck:
                    raise
                new_events = []
            if not new_events and recheck:
                from_cache.discard(customer_id)
                customer = states[customer_id] = app._load(customer_id)
                new_events = decide(customer, checked, envelope, customer_id)
        except (CrmError, msgspec.ValidationError) as e:
            outcomes.append(e)
            continue
        if new_events:
            first_versions.setdefault(customer_id, new_events[0].originator_version)
            customer = states[customer_id] = app._apply(customer, new_events)
            pending.extend(new_events)
            record = command_record(checked, customer_id, new_events)
            if record is not None:
                records.append(record)
                done[record.command_id] = record  # a repeat later in this chunk
        assert customer is not None
        outcomes.append(CommandResult(customer_id, customer.version, len(new_events)))
    if not pending:
        return outcomes
    try:
        app.events.append(pending, commands=records)
    except IntegrityError:
        # Another writer changed one of these customers meanwhile: nothing of the chunk was
        # stored, so run its commands one by one (each with its own bounded retries).
        for customer_id in states:
            app._forget(customer_id)
        return [_execute_one(app, c, validated) for c in commands]
    for customer_id, first in first_versions.items():
        saved = states[customer_id]
        assert saved is not None
        app._snapshot_if_due(saved, first)
        app.command_cache.put(saved)
    return outcomes


def _execute_one(
    app: CRM, command: cmd.Command, validated: bool
) -> CommandResult | CrmError | msgspec.ValidationError:
    try:
        return app.execute_validated(command) if validated else app.execute(command)
    except (CrmError, msgspec.ValidationError) as e:
        return e
