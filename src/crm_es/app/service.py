"""The service layer: one ``eventsourcing`` Application with one method per command.

Import path: ``from crm_es import CRM``. Every command goes through :meth:`CRM.execute`: resolve the
customer (UUID or external ref), load it, decide, save the new events in one transaction. A stale
save (another writer got there first) is retried a bounded number of times with a fresh load, then
raises :class:`~crm_es.domain.errors.ConcurrencyConflict`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID, uuid4, uuid5

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from crm_es.app.event_store import ChainedEventStore
from crm_es.app.mapper import CustomerEventMapper
from crm_es.app.store import StoreConfig, ensure_postgres_schema, parse_store_url, resolve_url
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer, CustomerSnapshot
from crm_es.domain.decisions import Envelope, decide
from crm_es.domain.errors import (
    ConcurrencyConflict,
    CustomerAlreadyRegistered,
    CustomerNotFound,
)
from crm_es.domain.events import CustomerEvent

# Fixed forever: customer ids derive from external refs through it (uuid5), on every host.
CUSTOMER_NAMESPACE: Final = UUID("6f1c2b9e-3d4a-5e6f-8a7b-9c0d1e2f3a4b")
MAX_ATTEMPTS: Final = 10
# Between attempts: a random sleep up to BACKOFF_BASE * 2**attempt, so colliding writers spread out.
BACKOFF_BASE: Final = 0.002
SNAPSHOT_INTERVAL: Final = 100


class CommandResult(msgspec.Struct, frozen=True):
    customer_id: UUID
    version: int
    events: int  # how many events the command appended (0 for a no-op such as an unchanged tag)


def customer_id_for_ref(ref: str | UUID) -> UUID:
    """A customer's id: the UUID itself, or the uuid5 of its external ref (deterministic)."""
    if isinstance(ref, UUID):
        return ref
    try:
        return UUID(ref)
    except ValueError:
        return uuid5(CUSTOMER_NAMESPACE, ref)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CRM(Application[UUID]):
    """The CRM core. ``CRM("postgresql://…")`` or ``CRM()`` for ``$CRM_ES_DB`` / ``sqlite:///crm.db``."""

    name = "crm"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The library names tables after the class; a subclass (a test double, an embedding
        # application's extension) must still read and write the same store.
        if "name" not in cls.__dict__:
            cls.name = CRM.name

    # Lets the library's ``take_snapshot(customer_id)`` build our msgpack snapshot.
    snapshot_class = CustomerSnapshot

    def __init__(
        self,
        url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        default_actor: str = "api:python",
        snapshot_interval: int = SNAPSHOT_INTERVAL,
    ) -> None:
        self.store: StoreConfig = parse_store_url(resolve_url(url))
        ensure_postgres_schema(self.store)
        self.clock = clock
        self.default_actor = default_actor
        self.snapshot_interval = snapshot_interval
        super().__init__(
            env={
                **self.store.env,
                "IS_SNAPSHOTTING_ENABLED": "y",
                "AGGREGATE_CACHE_MAXSIZE": "1000",
                **(env or {}),
            }
        )

    def construct_mapper(self) -> CustomerEventMapper:
        return CustomerEventMapper(
            compressor=self.factory.compressor(), cipher=self.factory.cipher()
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
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, BACKOFF_BASE * 2**attempt))
            customer = self._load(customer_id)
            if isinstance(command, cmd.RegisterCustomer) and customer is not None:
                raise CustomerAlreadyRegistered(command.external_ref or "", customer_id)
            envelope = Envelope.for_command(command, self.clock(), self.default_actor)
            new_events = decide(customer, command, envelope, customer_id)
            if not new_events:
                assert customer is not None
                return CommandResult(customer_id, customer.version, 0)
            try:
                self.save(*new_events)
            except IntegrityError:
                self._forget(customer_id)
                continue
            customer = self._evolve(customer, new_events)
            return CommandResult(customer_id, customer.version, len(new_events))
        raise ConcurrencyConflict(customer_id, MAX_ATTEMPTS)

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

    def _forget(self, customer_id: UUID) -> None:
        cache = self.repository.cache
        if cache is not None:
            cache.cache.pop(customer_id, None)

    def _evolve(self, customer: Customer | None, new_events: list[CustomerEvent]) -> Customer:
        for event in new_events:
            customer = event.mutate(customer)
        assert customer is not None
        first, last = new_events[0].originator_version, new_events[-1].originator_version
        if (
            self.snapshots is not None
            and last // self.snapshot_interval > (first - 1) // self.snapshot_interval
        ):
            self.snapshots.put([CustomerSnapshot.take(customer)])
        return customer

    def _run(self, command_type: type[cmd.Command], fields: dict[str, Any]) -> CommandResult:
        return self.execute_validated(cmd.command_from_fields(command_type, fields))

    # One method per command; keyword arguments are the command's fields (see commands.py).
    def register_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RegisterCustomer, fields)

    def update_profile(self, **fields: Any) -> CommandResult:
        return self._run(cmd.UpdateProfile, fields)

    def change_tags(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChangeTags, fields)

    def assign_owner(self, **fields: Any) -> CommandResult:
        return self._run(cmd.AssignOwner, fields)

    def change_consent(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChangeConsent, fields)

    def log_contact(self, **fields: Any) -> CommandResult:
        return self._run(cmd.LogContact, fields)

    def record_purchase(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RecordPurchase, fields)

    def refund_purchase(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RefundPurchase, fields)

    def record_service(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RecordService, fields)

    def file_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.FileComplaint, fields)

    def escalate_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.EscalateComplaint, fields)

    def resolve_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ResolveComplaint, fields)

    def reopen_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ReopenComplaint, fields)

    def follow_up_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.FollowUpComplaint, fields)

    def answer_survey(self, **fields: Any) -> CommandResult:
        return self._run(cmd.AnswerSurvey, fields)

    def grant_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.GrantPoints, fields)

    def redeem_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RedeemPoints, fields)

    def expire_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ExpirePoints, fields)

    def schedule_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ScheduleCareTask, fields)

    def complete_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.CompleteCareTask, fields)

    def cancel_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.CancelCareTask, fields)

    def churn_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChurnCustomer, fields)

    def win_back_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.WinBackCustomer, fields)

    def erase_personal_data(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ErasePersonalData, fields)

    # --- queries ---------------------------------------------------------------------------------

    def get_customer(self, customer: str | UUID, *, version: int | None = None) -> Customer:
        """Current state (or the state at stream ``version``) of a customer."""
        customer_id = customer_id_for_ref(customer)
        try:
            found: Customer = self.repository.get(customer_id, version=version)
        except AggregateNotFoundError:
            raise CustomerNotFound(str(customer)) from None
        return found

    def history(self, customer: str | UUID) -> Iterator[CustomerEvent]:
        """Every event of a customer's stream, oldest first."""
        customer_id = customer_id_for_ref(customer)
        events: Iterator[CustomerEvent] = iter(self.events.get(customer_id))  # type: ignore[arg-type]
        first = next(events, None)
        if first is None:
            raise CustomerNotFound(str(customer))
        yield first
        yield from events
