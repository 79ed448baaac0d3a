"""Running a merge: the one command that writes two streams, in ONE transaction.

:meth:`crm_es.app.service.CRM.execute` hands a :class:`~crm_es.domain.commands.MergeCustomers`
here. Both customers' locks are held (in stripe order: no deadlock with another merge of the
same pair the other way round); both states are loaded from the store, the principal must be
allowed to send the command to each, :func:`~crm_es.domain.decide.merges.decide_merge` decides,
and the events of both streams go to the store with the command's idempotency record in one
save: a crash or a collision leaves neither side. A collision (another writer appended to either
stream first) is retried with fresh states, as every command is.

The bulk path (``execute_many``) runs each merge here too, between the runs of other commands
around it (:func:`with_merges_alone`), so the order of a batch is kept.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from crm_es.app.command_unit import CommandUnit
from crm_es.app.customer_cache import CustomerCache
from crm_es.app.results import CommandResult, command_record
from crm_es.domain import commands as cmd
from crm_es.domain.decide import Envelope
from crm_es.domain.decide.merges import decide_merge
from crm_es.domain.errors import ConcurrencyConflict, CrmError
from crm_es.domain.ids import customer_id_for_command, customer_id_for_ref
from crm_es.store.group_commit import GroupCommitter

ATTEMPTS = 10
BACKOFF = 0.002

T = TypeVar("T")
Done = Callable[[cmd.Command], CommandResult | None]
"""The first result of a command already done (looked up by its command_id), or None."""


class MergeRunner:
    """What a merge runs with: the service's unit, cache, committer and log lookup."""

    def __init__(
        self, unit: CommandUnit, cache: CustomerCache, committer: GroupCommitter, done: Done
    ) -> None:
        self.unit, self.command_cache, self.committer, self.done = unit, cache, committer, done


def execute_merge(crm: MergeRunner, command: cmd.MergeCustomers) -> CommandResult:
    """Merge ``command.customer`` into ``command.into`` (validated command); raises a CrmError
    and stores nothing when a rule is broken, or answers a re-sent command from the log."""
    duplicate_id = customer_id_for_command(command)
    survivor_id = customer_id_for_ref(command.into)
    with crm.command_cache.locks([duplicate_id, survivor_id]):
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, BACKOFF * 2**attempt))
            try:
                # After a collision the command id may be taken (by this command, done by
                # another process, or by another command: IdempotencyConflict): look first.
                return _attempt(crm, command, duplicate_id, survivor_id, check_log=attempt > 0)
            except IntegrityError:  # another writer saved one of the streams (or the id) first
                continue
            finally:
                crm.command_cache.evict(duplicate_id)
                crm.command_cache.evict(survivor_id)
    raise ConcurrencyConflict(duplicate_id, ATTEMPTS)


def _attempt(
    crm: MergeRunner,
    command: cmd.MergeCustomers,
    duplicate_id: UUID,
    survivor_id: UUID,
    check_log: bool = False,
) -> CommandResult:
    unit = crm.unit
    duplicate, survivor = unit.load(duplicate_id), unit.load(survivor_id)
    # The principal must be allowed the command on each side (a staff member: both are its
    # customers), checked before anything is said about either, the log included.
    unit.may_send(command, duplicate)
    unit.may_send(msgspec.structs.replace(command, customer=command.into), survivor)
    if check_log and (done := crm.done(command)) is not None:
        return done
    try:
        envelope = Envelope.for_command(
            command, unit.clock(), unit.principal.name, unit.store.timezone
        )
        closing, absorbing = decide_merge(
            duplicate, survivor, command, envelope, duplicate_id, survivor_id
        )
    except CrmError:
        done = crm.done(command)
        if done is not None:  # the same merge sent again: its first result
            return done
        raise
    assert duplicate is not None and survivor is not None  # decide_merge refused otherwise
    events = [*closing, *absorbing]
    version = closing[-1].originator_version
    key = unit.store.secrets.idempotency_key
    # The record and the result name the duplicate's events (the id it carries, see merges).
    record = command_record(command, duplicate_id, version, len(closing), key)
    first = {duplicate_id: closing[0].originator_version,
             survivor_id: absorbing[0].originator_version}  # fmt: skip
    duplicate, survivor = unit.apply(duplicate, closing), unit.apply(survivor, absorbing)
    snapshots = [
        s for state in (duplicate, survivor) for s in unit.snapshot_states(state, first[state.id])
    ]
    crm.committer.commit(events, [record] if record else [], snapshots)
    return CommandResult(duplicate_id, version, len(closing))


def with_merges_alone(
    commands: Iterable[cmd.Command],
    run_many: Callable[[Iterable[cmd.Command]], Iterator[T]],
    run_merge: Callable[[cmd.Command], T],
) -> Iterator[T]:
    """The outcomes of ``commands`` in order: runs of other commands through ``run_many`` (the
    bulk path, fed lazily: an import is never held in memory), each merge alone through
    ``run_merge`` once the run before it has finished."""
    source = iter(commands)
    merge: list[cmd.Command] = []  # the merge that ended the current run

    def run(first: cmd.Command) -> Iterator[cmd.Command]:
        yield first
        for command in source:
            if isinstance(command, cmd.MergeCustomers):
                merge.append(command)
                return
            yield command

    for command in source:
        if not isinstance(command, cmd.MergeCustomers):
            yield from run_many(run(command))
            if not merge:
                return
            command = merge.pop()
        yield run_merge(command)
