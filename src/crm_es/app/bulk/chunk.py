"""One chunk of a bulk run: its commands decided and encoded, its save, and what follows it.

A chunk is decided on the states of its customers (cached, carried over from the chunk before
it, or loaded), which it changes in place, so while a chunk is alive it owns those states: they
are taken out of the command cache, under their customers' locks (so no single command is half
way through one of them), and nobody else can reach them until the chunk puts them back. The
locks are not held beyond that: a command another thread runs meanwhile on one of these
customers decides on what is stored, and the store's version check sorts out who was first
(the loser is redone), exactly as with another process. The chunk's events are encoded (hash
chain included) before the save, so the save itself is only the store's work and can run in
the background while the next chunk is decided (see :mod:`crm_es.app.bulk.pipeline`).

Each command runs the steps of :class:`~crm_es.app.command_unit.CommandUnit`, as a single
command does: the chunk only batches the saves. The chunk's save holds its events, their
records and the snapshots they made due. When it succeeds, :meth:`Chunk.stored_ok` remembers
the chain heads and finishes the unit's steps (keys of erasures deleted), then returns the
states to the cache; any other ending calls :meth:`Chunk.abandon`, which drops the states (they
are loaded again from the store on their next use).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import msgspec

from crm_es.app.bulk import purchase_columns
from crm_es.app.command_unit import CommandUnit
from crm_es.app.results import CommandResult
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer
from crm_es.domain.errors import CrmError
from crm_es.domain.events import CustomerEvent
from crm_es.domain.ids import customer_id_for_command
from crm_es.store.codec import StoredRow
from crm_es.store.recorders import CommandRecord

Outcome = CommandResult | CrmError | msgspec.ValidationError
ExecuteOne = Callable[[cmd.Command], CommandResult]
"""The single-command path (with its own retries), for commands a chunk hands back."""


class Chunk:
    """Commands decided together and saved in ONE transaction."""

    # Purchases the columnar decision can prove it models are decided by it (see
    # :mod:`crm_es.app.bulk.purchase_columns`); False: every command by the command path.
    columnar = True

    def __init__(
        self, unit: CommandUnit, execute_one: ExecuteOne, commands: list[cmd.Command],
        validated: bool,
    ) -> None:  # fmt: skip
        self.unit, self.execute_one = unit, execute_one
        self.commands, self.validated = commands, validated
        self.outcomes: list[Outcome] = []
        # Keyed by ``UUID.int`` (a UUID's own hash is a Python-level method).
        self.states: dict[int, Customer | None] = {}
        self.from_cache: set[int] = set()  # states that may be stale: refusals are rechecked
        self.first_versions: dict[int, int] = {}  # customers this chunk changed
        self.stored: list[StoredRow] = []  # the new events, encoded
        self.snapshots: list[StoredRow] = []  # of the states where a stream crossed the interval
        self.records: list[CommandRecord] = []
        self.heads: dict[int, tuple[int, bytes]] = {}
        self.events: list[CustomerEvent] = []  # the new events, decided
        self._cached: dict[int, Customer] = {}  # taken out of the command cache
        self._loaded: dict[int, Customer | None] = {}  # read from the store for this chunk

    # --- deciding --------------------------------------------------------------------------------

    def decide(self, before: Chunk | None) -> None:
        """Decide every command in order on the state left by the previous ones (and by the
        chunk ``before``, whose save may still be running), then encode the new events."""
        unit = self.unit
        targets = [_target(c) for c in self.commands]
        keys = {t.int for t in targets if t is not None}
        # Out of the cache while this chunk owns them: nobody may see events it has decided
        # and not yet saved (not even its own thread, between two outcomes it yields).
        with unit.cache.locks(keys):
            self._cached = unit.cache.take_many(keys)
        self._loaded = self._load_missing(targets, before)
        ids = [c.command_id for c in self.commands if c.command_id is not None]
        done = unit.store.command_log.select_commands(ids) if ids else {}
        if before is not None:  # its records are not stored yet, but will be before ours
            done.update({r.command_id: r for r in before.records})
        pending = self.events
        # One recorded time for the chunk: its events commit together, in one transaction.
        now = unit.clock()
        columns = self._purchase_columns(targets, done, before, now)
        for command, target, minor in zip(self.commands, targets, columns, strict=True):
            if isinstance(command, cmd.PlanCommand):  # the plan's own stream: saved on its own
                self.outcomes.append(self._run_one(command))
                continue
            if minor is not None:
                assert target is not None and isinstance(command, cmd.RecordPurchase)
                self._decide_purchase(command, target, minor, now)
                continue
            try:
                checked = command if self.validated else cmd.validate_command(command)
                customer_id = target if target is not None else customer_id_for_command(checked)
                key = customer_id.int
                if checked.command_id is not None and checked.command_id in done:
                    # Answered from the log only to a principal that may send it at all.
                    if key not in self.states:
                        self.states[key] = self._take_state(customer_id, before)
                    unit.may_send(checked, self.states[key], replay=True)
                    self.outcomes.append(unit.replayed(checked, done[checked.command_id]))
                    continue
                customer, new_events = self._decide_one(checked, customer_id, now, before)
            except (CrmError, msgspec.ValidationError) as e:
                self.outcomes.append(e)
                continue
            if new_events:
                self.first_versions.setdefault(key, new_events[0].originator_version)
                customer = self.states[key] = unit.apply(customer, new_events)
                pending.extend(new_events)
            record = unit.record(checked, customer, new_events)
            if record is not None:
                self.records.append(record)
                done[record.command_id] = record  # a repeat later in this chunk
            assert customer is not None
            self.outcomes.append(CommandResult(customer_id, customer.version, len(new_events)))
        if pending:
            store = unit.store
            self.stored, self.heads = store.events.encode_rows(
                pending, before.heads if before is not None else None
            )
            for key, first in self.first_versions.items():
                state = self.states[key]
                if state is not None and store.snapshot_due(state, first):
                    # Encoded now: a later chunk goes on changing the state in place.
                    self.snapshots.append(store.snapshot_row(state, self.heads[key][1]))

    def _purchase_columns(
        self, targets: list[UUID | None], done: dict[str, CommandRecord], before: Chunk | None,
        now: datetime,
    ) -> list[int | None]:  # fmt: skip
        """The purchases the columnar decision takes (their minor units), None elsewhere."""
        if not (self.columnar and self.validated):
            return [None] * len(self.commands)

        def state_of(customer_id: UUID) -> Customer | None:
            key = customer_id.int
            if key not in self.states:
                self.states[key] = self._take_state(customer_id, before)
            return self.states[key]

        return purchase_columns.plan(
            self.commands, targets, done, state_of, self.unit.may_send, now
        )

    def _decide_purchase(
        self, command: cmd.RecordPurchase, customer_id: UUID, minor: int, now: datetime
    ) -> None:
        key = customer_id.int
        customer = self.states[key]
        assert customer is not None  # plan() takes only registered customers
        actor = self.unit.principal.name
        new_events = purchase_columns.purchase_events(customer, command, minor, now, actor)
        self.first_versions.setdefault(key, new_events[0].originator_version)
        for event in new_events:
            customer.apply(event)
        self.events.extend(new_events)
        record = self.unit.record(command, customer, new_events)
        if record is not None:
            self.records.append(record)
        self.outcomes.append(CommandResult(customer_id, customer.version, len(new_events)))

    def _decide_one(
        self, command: cmd.Command, customer_id: UUID, now: datetime, before: Chunk | None
    ) -> tuple[Customer | None, list[CustomerEvent]]:
        key = customer_id.int
        if key not in self.states:
            self.states[key] = self._take_state(customer_id, before)
        # A cached state this chunk has not changed yet may be stale: a refusal or a no-op
        # decided on it is judged again on the stored state, as a single command's is.
        stale = key in self.from_cache and key not in self.first_versions
        customer, new_events = self.unit.decide(
            command, customer_id, self.states[key], may_be_stale=stale, now=now
        )
        if stale and customer is not self.states[key]:  # reloaded: now as stored
            self.from_cache.discard(key)
            self.states[key] = customer
        return customer, new_events

    def _take_state(self, customer_id: UUID, before: Chunk | None) -> Customer | None:
        key = customer_id.int
        if before is not None and key in before.states:
            # Carried on from the chunk before: it may hold events that are still being saved,
            # and that chunk leaves putting it back in the cache to this one.
            if key not in before.first_versions:  # as stored when that chunk read it: a
                self.from_cache.add(key)  # refusal is judged again on a reload
            return before.states[key]
        cached = self._cached.get(key)
        if cached is not None:
            self.from_cache.add(key)
            return cached
        if key in self._loaded:
            # Read when the chunk began, so maybe before another writer's commit: like a
            # cached state, a refusal decided on it is judged again on a fresh load.
            self.from_cache.add(key)
            return self._loaded.pop(key)
        return self.unit.load(customer_id)  # a command whose target only validation finds

    def _load_missing(
        self, targets: list[UUID | None], before: Chunk | None
    ) -> dict[int, Customer | None]:
        """The stored states of the chunk's customers that are neither cached nor carried on
        from the chunk before, read together: a new process meets every customer cold, and
        one by one each costs two queries (79 µs of CPU on SQLite, more on PostgreSQL)."""
        carried = before.states if before is not None else {}
        missing: dict[int, UUID] = {}
        for target in targets:
            if target is not None:
                key = target.int
                if key not in self._cached and key not in carried:
                    missing[key] = target
        if not missing:
            return {}
        states = self.unit.store.load_many(list(missing.values()))
        return dict(zip(missing, states, strict=True))

    # --- after the save --------------------------------------------------------------------------

    def stored_ok(self, after: Chunk | None) -> None:
        """The save committed: remember the chain heads, finish the unit's steps (erasures'
        keys), return the states to the cache (except those the chunk ``after`` carried on:
        it puts them back)."""
        unit = self.unit
        unit.store.events.remember(self.heads)
        unit.committed(self.events)
        carried = after.states if after is not None else {}
        finished = [
            state for key, state in self.states.items() if state is not None and key not in carried
        ]
        # Taken states a refused command never touched go back too.
        unit.cache.put_many([*finished, *self._unused_cached()])
        self._cached = {}  # handed back: an abandon() after this must not hand them back again

    def _unused_cached(self) -> list[Customer]:
        return [state for key, state in self._cached.items() if key not in self.states]

    def abandon(self) -> None:
        """Drop the states (they may hold events that were never stored)."""
        for state in self.states.values():
            if state is not None:
                self.unit.cache.evict(state.id)
        self.unit.cache.put_many(self._unused_cached())  # untouched: still good
        self._cached = {}

    def run_one_by_one(self) -> list[Outcome]:
        """After a collision with another writer (nothing of the chunk was stored): each
        command again on its own, with its own bounded retries."""
        return (
            [
                done if isinstance(c, cmd.PlanCommand) else self._run_one(c)  # stored already
                for c, done in zip(self.commands, self.outcomes, strict=False)
            ]
            + [self._run_one(c) for c in self.commands[len(self.outcomes) :]]
        )

    def _run_one(self, command: cmd.Command) -> Outcome:
        try:
            return self.execute_one(command if self.validated else cmd.validate_command(command))
        except (CrmError, msgspec.ValidationError) as e:
            return e


def _target(command: cmd.Command) -> UUID | None:
    try:
        return customer_id_for_command(command)
    except (AttributeError, TypeError, ValueError, CrmError):
        return None  # a malformed command: its validation error is reported in order
