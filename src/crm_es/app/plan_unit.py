"""The command path of the customer-management plan: goals set, revised and closed.

Plan commands (:class:`~crm_es.domain.commands.PlanCommand`) name no customer: they go to the
plan's own stream, :data:`~crm_es.domain.plan.PLAN_ID`, through the same steps as a customer's
command (:mod:`crm_es.app.command_unit`), kept apart because the state they decide on is the
:class:`~crm_es.domain.plan.Plan`: the policy first (managers and admins set goals), then the
command log (a re-sent ``command_id`` is answered with its first result, a different payload
under it refused), load, decide, and one save of the events with the command's record. A save
that collides with another writer of the plan is redone on a fresh load, a bounded number of
times. The events are chained and stored like any stream's, so ``audit verify``, ``export`` and
``import`` cover them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from eventsourcing.persistence import IntegrityError

from crm_es.app.results import CommandResult, command_record, same_payload
from crm_es.domain import commands as cmd
from crm_es.domain.decide.envelope import Envelope
from crm_es.domain.decide.goals import decide_plan
from crm_es.domain.errors import ConcurrencyConflict, CrmError, IdempotencyConflict
from crm_es.domain.plan import PLAN_ID, Plan, evolve_plan
from crm_es.domain.policy import check_command
from crm_es.domain.principals import Principal
from crm_es.store.store import Store

MAX_ATTEMPTS: Final = 10
Commit = Callable[[Sequence[Any], Sequence[Any]], None]
"""(events, command records) -> stored in one transaction."""


def load_plan(store: Store, lte: int | None = None) -> Plan:
    """The plan as stored (at stream version ``lte``)."""
    return evolve_plan(Plan(), store.events.get(PLAN_ID, lte=lte))


class PlanUnit:
    """Runs plan commands for one principal (its name is the actor of their events)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        principal: Principal,
        commit: Commit,
    ) -> None:
        self.store, self.clock, self.principal, self.commit = store, clock, principal, commit
        self._lock = threading.Lock()  # one plan command of this process at a time

    def execute(self, command: cmd.PlanCommand) -> CommandResult:
        """Run one validated plan command; raises a CrmError (and stores nothing) when a rule
        is broken."""
        check_command(self.principal, command, None, exists=True)
        with self._lock:
            for _ in range(MAX_ATTEMPTS):
                try:
                    return self._attempt(command)
                except IntegrityError:  # another writer saved the plan (or this command) first
                    continue
        raise ConcurrencyConflict(PLAN_ID, MAX_ATTEMPTS)

    def _attempt(self, command: cmd.PlanCommand) -> CommandResult:
        done = self._done(command)
        if done is not None:
            return done
        plan = load_plan(self.store)
        envelope = Envelope.for_command(
            command, self.clock(), self.principal.name, self.store.timezone
        )
        try:
            events = decide_plan(plan, command, envelope)
        except CrmError:
            # Another writer may have done this very command between the look-up above and
            # the load: its events refuse it now, its record answers it.
            done = self._done(command)
            if done is not None:
                return done
            raise
        version = plan.version + len(events)
        key = self.store.secrets.idempotency_key
        record = command_record(command, PLAN_ID, version, len(events), key)
        if events or record is not None:
            self.commit(events, [record] if record is not None else [])
        return CommandResult(PLAN_ID, version, len(events))

    def _done(self, command: cmd.PlanCommand) -> CommandResult | None:
        """The first result of a command whose id was done already (or IdempotencyConflict)."""
        if command.command_id is None:
            return None
        done = self.store.command_log.select_commands([command.command_id])
        if not done:
            return None
        first = done[command.command_id]
        if not same_payload(first.payload_hash, command, self.store.secrets.idempotency_key):
            raise IdempotencyConflict(command.command_id)
        return CommandResult(first.customer_id, first.version, first.events, True)
