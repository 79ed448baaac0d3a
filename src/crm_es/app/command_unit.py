"""Load / decide / recheck / finish: the one unit of work every command goes through.

The single-command path (:meth:`crm_es.app.service.CRM.execute`) and the bulk path
(:mod:`crm_es.app.bulk`) both run a command as the same steps, from here:

1. **load** the customer: a cached state (which may be stale: another process may have written
   since), or the stored one;
2. **decide** on it (pure, :func:`crm_es.domain.decide.decide`); a refusal or a no-op decided on
   a cached state is **rechecked** on the stored state, because only that can refuse for sure
   (events decided on a stale state are safe: their save collides and is redone);
3. **save** the events with the command's idempotency record and, where the stream crossed
   the snapshot interval, a snapshot of the state they lead to, in one transaction;
4. after the save has **committed**: delete the key of an erased customer.

So a rule, an erasure or a snapshot never depends on the path a command came in by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from crm_es.app.customer_cache import CustomerCache
from crm_es.app.results import CommandResult, command_record, same_payload
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.errors import CrmError, CustomerAlreadyRegistered, IdempotencyConflict
from crm_es.domain.events import CustomerEvent, PersonalDataErased
from crm_es.domain.pipeline import DEFAULT_PIPELINE
from crm_es.domain.policy import check_command
from crm_es.domain.principals import Principal
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS
from crm_es.store.pipeline_setting import pipeline_setting
from crm_es.store.recorders import CommandRecord
from crm_es.store.store import Store
from crm_es.store.survey_topics import survey_topics

Decision = tuple[Customer | None, list[CustomerEvent]]
"""The state a command was finally decided on, and the events it produced (none: a no-op)."""


class CommandUnit:
    """The steps of one command on one customer, shared by every path into the system."""

    def __init__(
        self,
        store: Store,
        cache: CustomerCache,
        clock: Callable[[], datetime],
        principal: Principal,
    ) -> None:
        self.store, self.cache, self.clock = store, cache, clock
        self.principal = principal

    def load(self, customer_id: UUID) -> Customer | None:
        return self.store.load(customer_id)

    def decide(
        self,
        command: cmd.Command,
        customer_id: UUID,
        customer: Customer | None,
        *,
        may_be_stale: bool,
        now: datetime,
    ) -> Decision:
        """The events ``command`` produces on ``customer``; a refusal or no-op decided on a
        state that ``may_be_stale`` is decided again on the stored state."""
        topics = DEFAULT_SURVEY_TOPICS  # looked up only for an answer that names a topic
        if isinstance(command, cmd.AnswerSurvey) and isinstance(command.topic, str):
            topics = survey_topics(self.store.settings).accepting(command.topic)
        pipeline = DEFAULT_PIPELINE  # looked up only for a command that sets a stage
        if isinstance(command, cmd.OpenOpportunity | cmd.AdvanceOpportunity):
            pipeline = pipeline_setting(self.store.settings).accepting(command.stage)
        envelope = Envelope.for_command(
            command, now, self.principal.name, self.store.timezone, topics, pipeline
        )
        if may_be_stale:
            try:
                new_events = self._decide(command, customer_id, customer, envelope)
            except CrmError:
                new_events = []
            if new_events is None or new_events:
                return customer, new_events or []
            customer = self.load(customer_id)
        return customer, self._decide(command, customer_id, customer, envelope) or []

    def _decide(
        self,
        command: cmd.Command,
        customer_id: UUID,
        customer: Customer | None,
        envelope: Envelope,
    ) -> list[CustomerEvent] | None:
        """The new events; None when there was nothing to decide (an erasure finished)."""
        self.may_send(command, customer)
        if isinstance(command, cmd.RegisterCustomer) and customer is not None:
            raise CustomerAlreadyRegistered(command.external_ref or "", customer_id)
        if isinstance(command, cmd.ErasePersonalData) and self.finish_erasure(customer):
            return None  # the erasure's event was stored before; its key is now gone too
        return decide(customer, command, envelope, customer_id)

    def may_send(
        self, command: cmd.Command, customer: Customer | None, *, replay: bool = False
    ) -> None:
        """PermissionDenied unless the principal may send ``command`` to ``customer`` (or,
        ``replay``, be answered its first result from the log)."""
        owner = customer.owner if customer is not None else None
        check_command(self.principal, command, owner, exists=customer is not None, replay=replay)

    def finish_erasure(self, customer: Customer | None) -> bool:
        """An erasure whose event was saved but whose key survived (a crash in between) is
        finished by erasing again: True if that happened."""
        return (
            customer is not None and customer.erased and self.store.personal_data.shred(customer.id)
        )

    @staticmethod
    def apply(customer: Customer | None, new_events: Sequence[CustomerEvent]) -> Customer:
        """``customer`` after its new events (changed in place)."""
        evolved = evolve(customer, new_events)
        assert evolved is not None  # a decision's events start with the registration, if any
        return evolved

    def committed(self, new_events: Sequence[CustomerEvent]) -> None:
        """The events are stored: an erasure's key is deleted now (after its event, so a crash
        between the two is repaired by erasing again, see :meth:`finish_erasure`)."""
        for event in new_events:
            if isinstance(event, PersonalDataErased):
                self.store.personal_data.shred(event.originator_id)

    def snapshot_states(self, customer: Customer, first_new_version: int) -> list[Customer]:
        """The state to snapshot in the save of events from ``first_new_version`` on (their
        versions crossed a multiple of the interval), or none."""
        return [customer] if self.store.snapshot_due(customer, first_new_version) else []

    def record(
        self, command: cmd.Command, customer: Customer | None, new_events: list[CustomerEvent]
    ) -> CommandRecord | None:
        """The idempotency record of a command (None without a command_id): stored with its
        events, or alone when it changed nothing, so that a re-send later, after other
        changes, is answered as done instead of applied."""
        if new_events:
            last = new_events[-1]
            version, customer_id = last.originator_version, last.originator_id
        else:
            assert customer is not None
            version, customer_id = customer.version, customer.id
        key = self.store.secrets.idempotency_key
        return command_record(command, customer_id, version, len(new_events), key)

    def replayed(self, command: cmd.Command, record: CommandRecord) -> CommandResult:
        """The original result of a command re-sent with the same ``command_id``."""
        if not same_payload(record.payload_hash, command, self.store.secrets.idempotency_key):
            raise IdempotencyConflict(record.command_id)
        return CommandResult(record.customer_id, record.version, record.events, duplicate=True)
