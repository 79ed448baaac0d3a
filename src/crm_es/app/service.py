"""The service layer: one ``eventsourcing`` Application with one method per command.

Import path: ``from crm_es import CRM``. Every command goes through :meth:`CRM.execute`: resolve the
customer (UUID or external ref), load it, decide, save the new events in one transaction. A stale
save (another writer got there first) is retried a bounded number of times with a fresh load, then
raises :class:`~crm_es.domain.errors.ConcurrencyConflict`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast
from uuid import UUID, uuid4, uuid5

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from crm_es.app import bulk
from crm_es.app.command_methods import CommandMethods
from crm_es.app.customer_cache import CustomerCache, configured_cache_size
from crm_es.app.event_store import ChainedEventStore
from crm_es.app.group_commit import GroupCommitter
from crm_es.app.mapper import CustomerEventMapper
from crm_es.app.privacy import MASTER_KEY_SETTING, CustomerKeyCipher, KeyStore, key_store_from_env
from crm_es.app.recorders import CommandRecord
from crm_es.app.results import CommandResult, command_record, payload_hash
from crm_es.app.store import (
    StoreConfig,
    ensure_postgres_schema,
    parse_store_url,
    resolve_url,
    schema_lock,
)
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer, CustomerSnapshot
from crm_es.domain.decisions import Envelope, decide
from crm_es.domain.errors import (
    ConcurrencyConflict,
    CrmError,
    CustomerAlreadyRegistered,
    CustomerNotFound,
    IdempotencyConflict,
)
from crm_es.domain.events import CustomerEvent, PersonalDataErased

# Fixed forever: customer ids derive from external refs through it (uuid5), on every host.
CUSTOMER_NAMESPACE: Final = UUID("6f1c2b9e-3d4a-5e6f-8a7b-9c0d1e2f3a4b")
MAX_ATTEMPTS: Final = 10
# Between attempts: a random sleep up to BACKOFF_BASE * 2**attempt, so colliding writers spread out.
BACKOFF_BASE: Final = 0.002
SNAPSHOT_INTERVAL: Final = 100


class _CommandLog(Protocol):
    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]: ...


# Ids of recently seen refs (uuid5 costs ~2 µs). A plain dict, cleared when full: an import
# over more customers than an LRU's bound missed on every row, and the LRU's own upkeep was 3%
# of an import that fit.
MAX_REMEMBERED_REFS: Final = 250_000
_ids_by_ref: dict[str, UUID] = {}


def customer_id_for_ref(ref: str | UUID) -> UUID:
    """A customer's id: the UUID itself, or the uuid5 of its external ref (deterministic)."""
    if isinstance(ref, UUID):
        return ref
    found = _ids_by_ref.get(ref)
    if found is None:
        found = _id_for_ref(ref)
        if len(_ids_by_ref) >= MAX_REMEMBERED_REFS:
            _ids_by_ref.clear()
        _ids_by_ref[ref] = found
    return found


def _id_for_ref(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        return uuid5(CUSTOMER_NAMESPACE, ref)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CRM(CommandMethods, Application[UUID]):
    """The CRM core. ``CRM("postgresql://…")`` or ``CRM()`` for ``$CRM_ES_DB`` / ``sqlite:///crm.db``."""

    name = "crm"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The library names tables after the class; a subclass (a test double, an embedding
        # application's extension) must still read and write the same store.
        if "name" not in cls.__dict__:
            cls.name = CRM.name

    # Lets the library's ``take_snapshot(customer_id)`` build our msgpack snapshot.
    snapshot_class = CustomerSnapshot
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
    ) -> None:
        self.store: StoreConfig = parse_store_url(resolve_url(url))
        self._key_store = key_store  # None: per-customer keys in the store (see privacy.py)
        self.clock = clock
        self.default_actor = default_actor
        self.snapshot_interval = snapshot_interval
        # Customer states kept for the command path (~3 KB each): an import over more
        # customers than this reloads them on every visit (see customer_cache.py).
        self.command_cache = CustomerCache(configured_cache_size(cache_size))
        # Straight to the event store (Application.save() adds nothing we use, but spends ~10%
        # of a command on runtime Protocol checks), through group commit.
        self.committer = GroupCommitter(
            lambda events, records: self.events.put(list(events), commands=list(records))
        )
        with schema_lock(self.store):  # creating tables: one process at a time
            ensure_postgres_schema(self.store)
            super().__init__(
                env={
                    **self.store.env,
                    "IS_SNAPSHOTTING_ENABLED": "y",
                    **(env or {}),
                }
            )

    def construct_mapper(self) -> CustomerEventMapper:
        keys = self._key_store or key_store_from_env(self.store, self.env.get(MASTER_KEY_SETTING))
        self.personal_data = CustomerKeyCipher(keys)
        return CustomerEventMapper(
            compressor=self.factory.compressor(),
            cipher=self.factory.cipher(),
            personal_data=self.personal_data,
        )

    def close(self) -> None:
        super().close()
        self.personal_data.close()

    def event_reader(self, personal_fields: frozenset[str] | None = None) -> CustomerEventMapper:
        """A mapper for bulk readers (projections) that decrypts only ``personal_fields``."""
        return CustomerEventMapper(
            compressor=self.factory.compressor(),
            cipher=self.factory.cipher(),
            personal_data=self.personal_data,
            personal_fields=personal_fields,
        )

    def construct_event_store(self) -> ChainedEventStore:
        assert isinstance(self.mapper, CustomerEventMapper)
        return ChainedEventStore(self.mapper, self.recorder)

    # --- commands --------------------------------------------------------------------------------

    def execute(self, command: cmd.Command) -> CommandResult:
        """Run one command; raises a CrmError (and stores nothing) when a rule is broken.

        A command Struct built in Python skipped msgspec's constraint checks (lengths, patterns,
        time zones), so it is validated here exactly as the JSON form would be.
        """
        return self.execute_validated(cmd.validate_command(command))

    def execute_validated(self, command: cmd.Command) -> CommandResult:
        """Run a command that came out of msgspec decoding/conversion (already validated)."""
        customer_id = self.customer_id_for(command)
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
                if result is not None:
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
        except CrmError:
            if not check_log and (done := self._done(command)) is not None:
                return done
            raise

    def _done(self, command: cmd.Command) -> CommandResult | None:
        """The original result if this command's id was already done (or IdempotencyConflict)."""
        if command.command_id is None:
            return None
        done = self.command_log.select_commands([command.command_id])
        return self._replayed(command, done[command.command_id]) if done else None

    def _decide_and_commit(self, command: cmd.Command, customer_id: UUID) -> CommandResult:
        cached = self.command_cache.get(customer_id)
        customer = cached or self._load(customer_id)
        if isinstance(command, cmd.RegisterCustomer) and customer is not None:
            raise CustomerAlreadyRegistered(command.external_ref or "", customer_id)
        if isinstance(command, cmd.ErasePersonalData) and self._finish_erasure(customer):
            assert customer is not None
            return CommandResult(customer_id, customer.version, 0)
        envelope = Envelope.for_command(command, self.clock(), self.default_actor)
        try:
            new_events = decide(customer, command, envelope, customer_id)
        except CrmError:
            if cached is None:
                raise
            new_events = []  # judged again below, on the stored state
        if not new_events and cached is not None:
            # The cached copy may be stale (another process wrote since). Events decided on it
            # are safe (a stale save collides and is retried), but a refusal or a no-op is only
            # right if the stored state says so too.
            customer = self._load(customer_id)
            new_events = decide(customer, command, envelope, customer_id)
        if not new_events:
            assert customer is not None
            return CommandResult(customer_id, customer.version, 0)
        record = command_record(command, customer_id, new_events)
        self.committer.commit(new_events, [record] if record else [])
        if any(isinstance(e, PersonalDataErased) for e in new_events):
            self.personal_data.shred(customer_id)  # after the event: a crash here is repaired
        customer = self._evolve(customer, new_events)  # only now: the events are stored
        self.command_cache.put(customer)
        return CommandResult(customer_id, customer.version, len(new_events))

    @property
    def command_log(self) -> _CommandLog:
        return cast(_CommandLog, self.recorder)

    @staticmethod
    def _replayed(command: cmd.Command, record: CommandRecord) -> CommandResult:
        """The original result of a command re-sent with the same ``command_id``."""
        if record.payload_hash != payload_hash(command):
            raise IdempotencyConflict(record.command_id)
        return CommandResult(record.customer_id, record.version, record.events, duplicate=True)

    def customer_id_for(self, command: cmd.Command) -> UUID:
        if isinstance(command, cmd.RegisterCustomer):
            if command.external_ref is not None:
                return customer_id_for_ref(command.external_ref)
            if command.command_id is not None:
                return uuid5(CUSTOMER_NAMESPACE, "command:" + command.command_id)
            return uuid4()
        assert isinstance(command, cmd.CustomerCommand)
        return customer_id_for_ref(command.customer)

    def _load(self, customer_id: UUID) -> Customer | None:
        try:
            customer: Customer = self.repository.get(customer_id)
        except AggregateNotFoundError:
            return None
        return customer

    def _finish_erasure(self, customer: Customer | None) -> bool:
        """An erasure whose event was saved but whose key survived (a crash in between) is
        finished by erasing again: True if that happened."""
        return customer is not None and customer.erased and self.personal_data.shred(customer.id)

    def execute_many(
        self, commands: Iterable[cmd.Command], *, chunk_size: int = 500, validated: bool = False
    ) -> Iterator[CommandResult | CrmError | msgspec.ValidationError]:
        """Run many commands, one transaction per chunk; yields each command's result or error
        in order (see :mod:`crm_es.app.bulk`). Pass ``validated=True`` for commands that came
        out of msgspec decoding."""
        return bulk.execute_many(self, commands, chunk_size=chunk_size, validated=validated)

    def _evolve(self, customer: Customer | None, new_events: list[CustomerEvent]) -> Customer:
        first = new_events[0].originator_version
        customer = self._apply(customer, new_events)
        self._snapshot_if_due(customer, first)
        return customer

    @staticmethod
    def _apply(customer: Customer | None, new_events: list[CustomerEvent]) -> Customer:
        for event in new_events:
            if customer is None:
                customer = Customer.created_by(event)
            customer.apply(event)
        assert customer is not None
        return customer

    def _snapshot_if_due(self, customer: Customer, first_new_version: int) -> None:
        """Snapshot when the saved events crossed a multiple of the interval."""
        interval = self.snapshot_interval
        if (
            self.snapshots is not None
            and customer.version // interval > (first_new_version - 1) // interval
        ):
            self.snapshots.put([CustomerSnapshot.take(customer)])

    def _run(self, command_type: type[cmd.Command], fields: dict[str, Any]) -> CommandResult:
        return self.execute_validated(cmd.command_from_fields(command_type, fields))

    # --- queries ---------------------------------------------------------------------------------

    def get_customer(self, customer: str | UUID, *, version: int | None = None) -> Customer:
        """Current state (or the state at stream ``version``) of a customer."""
        customer_id = customer_id_for_ref(customer)
        try:
            found: Customer = self.repository.get(customer_id, version=version)
        except AggregateNotFoundError:
            raise CustomerNotFound(str(customer)) from None
        return found

    def get_customer_as_of(
        self,
        customer: str | UUID,
        *,
        as_of: datetime | str | None = None,
        known_at: datetime | str | None = None,
        version: int | None = None,
    ) -> Customer:
        """The customer as the world stood at business time ``as_of`` (events that occurred by
        then), as recorded by ``known_at`` (events recorded by then), up to stream ``version``;
        any combination. A bare date string means the end of that day, UTC."""
        from crm_es.app.audit import customer_as_of

        return customer_as_of(self, customer, as_of=as_of, known_at=known_at, version=version)

    def history(self, customer: str | UUID) -> Iterator[CustomerEvent]:
        """Every event of a customer's stream, oldest first."""
        customer_id = customer_id_for_ref(customer)
        events: Iterator[CustomerEvent] = iter(self.events.get(customer_id))
        first = next(events, None)
        if first is None:
            raise CustomerNotFound(str(customer))
        yield first
        yield from events
