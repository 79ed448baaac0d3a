"""The service layer: one ``eventsourcing`` Application with one method per command.

Import path: ``from crm_es import CRM``. Every command goes through :meth:`CRM.execute`: resolve the
customer (UUID or external ref), then the steps of :class:`~crm_es.app.command_unit.CommandUnit`
(load, decide, recheck, save, finish). A stale save (another writer got there first) is retried a
bounded number of times with a fresh load, then raises
:class:`~crm_es.domain.errors.ConcurrencyConflict`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    IntegrityError,
)
from eventsourcing.utils import Environment

from crm_es.app import bulk, merge
from crm_es.app.command_methods import CommandMethods
from crm_es.app.command_unit import CommandUnit
from crm_es.app.customer_cache import CustomerCache, configured_cache_size
from crm_es.app.customer_reads import CustomerReads
from crm_es.app.plan_unit import PlanUnit, load_plan
from crm_es.app.results import CommandResult
from crm_es.domain import commands as cmd
from crm_es.domain.errors import (
    ConcurrencyConflict,
    CrmError,
    CustomerNotFound,
    PermissionDenied,
)
from crm_es.domain.events import CustomerEvent
from crm_es.domain.ids import customer_id_for_command
from crm_es.domain.plan import PLAN_ID, Plan
from crm_es.domain.policy import (
    StoreAction,
    check_store_action,
)
from crm_es.domain.principals import Principal, embedded
from crm_es.store.codec import CustomerEventMapper
from crm_es.store.event_store import ChainedEventStore
from crm_es.store.group_commit import GroupCommitter
from crm_es.store.keys import KeyStore
from crm_es.store.store import APPLICATION_NAME, SNAPSHOT_INTERVAL, Store

MAX_ATTEMPTS: Final = 10
# Between attempts: a random sleep up to BACKOFF_BASE * 2**attempt, so colliding writers spread out.
BACKOFF_BASE: Final = 0.002


def utc_now() -> datetime:
    return datetime.now(UTC)


class CRM(CommandMethods, CustomerReads, Application[UUID]):
    """The CRM core. ``CRM("postgresql://…")`` or ``CRM()`` for ``$CRM_ES_DB`` / ``sqlite:///crm.db``."""

    name = APPLICATION_NAME

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The library names tables after the class; a subclass (a test double, an embedding
        # application's extension) must still read and write the same store.
        if "name" not in cls.__dict__:
            cls.name = CRM.name

    events: ChainedEventStore  # see construct_event_store

    def __init__(
        self,
        url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        default_actor: str = "api:python",
        snapshot_interval: int = SNAPSHOT_INTERVAL,
        key_store: KeyStore | None = None,
        cache_size: int | None = None,
        principal: Principal | None = None,
    ) -> None:
        """``principal``: who is calling (its name is the actor of every event it causes, and
        :mod:`crm_es.domain.policy` decides what it may do). Default: the embedding application
        itself, named ``default_actor``, with every right (it names the user it acts for in
        ``on_behalf_of``)."""
        self.store = Store(url, env=env, key_store=key_store, snapshot_interval=snapshot_interval)
        self.clock = clock
        self.principal = principal or embedded(default_actor)
        self.default_actor = self.principal.name
        # Customer states kept for the command path (~3 KB each): an import over more
        # customers than this reloads them on every visit (see customer_cache.py).
        self.command_cache = CustomerCache(configured_cache_size(cache_size))
        self.unit = CommandUnit(self.store, self.command_cache, clock, self.principal)
        # Straight to the event store (Application.save() adds nothing we use, but spends ~10%
        # of a command on runtime Protocol checks), through group commit.
        self.committer = GroupCommitter(self.store.save)
        # Goals of the customer-management plan: a stream of its own (app/plan_unit.py).
        self.plan_unit = PlanUnit(self.store, clock, self.principal, self.committer.commit)
        super().__init__()

    # The library's construction steps hand out what the store opened.
    def construct_env(self, name: str, env: Any = None) -> Environment:
        return self.store.env

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return self.store.factory

    def construct_mapper(self) -> CustomerEventMapper:
        return self.store.codec

    def construct_recorder(self) -> ApplicationRecorder:
        return self.store.recorder

    def construct_event_store(self) -> ChainedEventStore:
        return self.store.events

    def construct_snapshot_store(self) -> EventStore[UUID]:
        return self.store.snapshots

    @property
    def snapshot_interval(self) -> int:
        return self.store.snapshot_interval

    def close(self) -> None:
        self.closing.set()
        self.store.close()

    # --- commands --------------------------------------------------------------------------------

    def execute(self, command: cmd.Command) -> CommandResult:
        """Run one command; raises a CrmError (and stores nothing) when a rule is broken.

        A command Struct built in Python skipped msgspec's constraint checks (lengths, patterns,
        time zones), so it is validated here exactly as the JSON form would be.
        """
        return self.execute_validated(cmd.validate_command(command))

    def execute_validated(self, command: cmd.Command) -> CommandResult:
        """Run a command that came out of msgspec decoding/conversion (already validated)."""
        if isinstance(command, cmd.MergeCustomers):  # two streams: see crm_es.app.merge
            runner = merge.MergeRunner(self.unit, self.command_cache, self.committer, self._done)
            return merge.execute_merge(runner, command)
        if isinstance(command, cmd.PlanCommand):
            return self.plan_unit.execute(command)
        customer_id = customer_id_for_command(command)
        with self.command_cache.lock(customer_id):
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, BACKOFF_BASE * 2**attempt))
                try:
                    # After a collision the command may have been done by someone else: look.
                    result = self._attempt(command, customer_id, check_log=attempt > 0)
                except IntegrityError:  # another writer saved this stream (or command) first
                    self.command_cache.evict(customer_id)
                    continue
                except BaseException:
                    self.command_cache.evict(customer_id)
                    raise
                return result
        raise ConcurrencyConflict(customer_id, MAX_ATTEMPTS)

    def _attempt(self, command: cmd.Command, customer_id: UUID, check_log: bool) -> CommandResult:
        """One try. The idempotency record is looked up only when something went wrong: a
        command already done always fails here (on the record's key, or on a business rule),
        so the common case spends no round trip on it."""
        if check_log and (done := self._done(command)) is not None:
            return done
        try:
            return self._decide_and_commit(command, customer_id)
        except PermissionDenied as denied:
            # Answered from the log only to a principal that may send it to this customer,
            # checked first: else "duplicate" against "conflict" would tell whose a guessed
            # payload was. A command an earlier version stored with its payload's actor is
            # still answered as done.
            if check_log:
                raise
            self.unit.may_send(command, self.unit.load(customer_id), replay=True)
            done = self._done(command)
            if done is None:
                raise denied from None
            return done
        except CrmError:
            if not check_log and (done := self._done(command)) is not None:
                return done
            raise

    def _done(self, command: cmd.Command) -> CommandResult | None:
        """The original result if this command's id was already done (or IdempotencyConflict)."""
        if command.command_id is None:
            return None
        done = self.store.command_log.select_commands([command.command_id])
        return self.unit.replayed(command, done[command.command_id]) if done else None

    def _decide_and_commit(self, command: cmd.Command, customer_id: UUID) -> CommandResult:
        unit = self.unit
        cached = self.command_cache.get(customer_id)
        customer = cached or unit.load(customer_id)
        customer, new_events = unit.decide(
            command, customer_id, customer, may_be_stale=cached is not None, now=self.clock()
        )
        if not new_events:
            # Nothing to do now; but a command re-sent with its id is answered as done.
            if (done := self._done(command)) is not None:
                return done
            assert customer is not None
            record = unit.record(command, customer, new_events)
            if record is not None:  # kept, so a re-send after later changes stays a no-op
                self.committer.commit([], [record])
            return CommandResult(customer_id, customer.version, 0)
        record = unit.record(command, customer, new_events)
        # Applied before the save, for its snapshot: the state is ours alone (the customer's
        # lock is held) and leaves the cache if the save fails.
        customer = unit.apply(customer, new_events)
        snapshots = unit.snapshot_states(customer, new_events[0].originator_version)
        self.committer.commit(new_events, [record] if record else [], snapshots)
        unit.committed(new_events)
        self.command_cache.put(customer)
        return CommandResult(customer_id, customer.version, len(new_events))

    def execute_many(
        self, commands: Iterable[cmd.Command], *, chunk_size: int = 500, validated: bool = False
    ) -> Iterator[CommandResult | CrmError | msgspec.ValidationError]:
        """Run many commands, one transaction per chunk; yields each command's result or error
        in order (see :mod:`crm_es.app.bulk`). Pass ``validated=True`` for commands that came
        out of msgspec decoding."""
        return merge.with_merges_alone(
            commands,
            lambda run: bulk.execute_many(
                self.unit, self.execute_validated, run, chunk_size=chunk_size, validated=validated
            ),
            lambda one: self._outcome(one, validated),
        )

    def _outcome(
        self, command: cmd.Command, validated: bool
    ) -> CommandResult | CrmError | msgspec.ValidationError:
        """A merge's outcome in a bulk run: its result or its error, as the bulk path yields."""
        try:
            return self.execute_validated(command) if validated else self.execute(command)
        except (CrmError, msgspec.ValidationError) as e:
            return e

    def _run(self, command_type: type[cmd.Command], fields: dict[str, Any]) -> CommandResult:
        return self.execute_validated(cmd.command_from_fields(command_type, fields))

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None, *_: Any) -> None:
        """Snapshot a customer's state (at ``version``) now; snapshots are otherwise taken
        every ``snapshot_interval`` events."""
        state = self.store.load(aggregate_id, version)  # as stored: never a masked copy
        if state is None:
            raise CustomerNotFound(str(aggregate_id))
        self.store.take_snapshot(state)

    def plan(self) -> Plan:
        """The customer-management plan as stored now: its goals, open and closed."""
        self.check("report")
        return load_plan(self.store)

    def plan_history(self) -> Iterator[CustomerEvent]:
        """Every event of the plan's stream, oldest first (goals hold no personal data)."""
        self.check("report")
        return iter(self.store.events.get(PLAN_ID))

    def check(self, action: StoreAction) -> None:
        """Raise PermissionDenied unless the principal may run the store-wide ``action``."""
        check_store_action(self.principal, action)
