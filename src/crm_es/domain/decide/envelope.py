"""What every decider writes with: the :class:`Envelope` of a command and the :class:`Batch` of
events it produces.

The envelope carries who, when and why (recorded time, business time, actor, ids, reason) and is
stamped on every event; the batch numbers the events of one decision from
``customer.version + 1`` and lets later rules see the effect of earlier events. Shared by
:mod:`crm_es.domain.decide.decisions` (the entry point, :func:`~crm_es.domain.decide.decide`)
and the decider modules it dispatches to, such as :mod:`crm_es.domain.decide.after_sales`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final, TypeVar
from uuid import UUID

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.errors import FutureBusinessTime, InvalidValue
from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS
from crm_es.domain.times import business_day

# Clocks of embedding applications drift; more than this into the future is an input error.
FUTURE_SKEW: Final = timedelta(minutes=5)
EARLIEST_BUSINESS_TIME: Final = datetime(1900, 1, 1, tzinfo=UTC)

E = TypeVar("E", bound=ev.CustomerEvent)


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Who, when and why: stamped on every event a command produces. ``tz`` is the store's
    time zone, in which the business time falls on a calendar :attr:`day` (not stamped)."""

    recorded_at: datetime
    occurred_at: datetime
    actor: str
    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    reason: str | None = None
    on_behalf_of: str | None = None
    tz: tzinfo = UTC
    # The store's survey topics (not stamped): the topics an answer may carry.
    survey_topics: tuple[str, ...] = DEFAULT_SURVEY_TOPICS
    # The store's sales pipeline (not stamped): the stages an opportunity may be at.
    pipeline: Pipeline = DEFAULT_PIPELINE

    @property
    def day(self) -> date:
        """The calendar day of the business time in the store's time zone."""
        return business_day(self.occurred_at, self.tz)

    @classmethod
    def for_command(
        cls,
        command: cmd.Command,
        now: datetime,
        actor: str,
        tz: tzinfo = UTC,
        survey_topics: tuple[str, ...] = DEFAULT_SURVEY_TOPICS,
        pipeline: Pipeline = DEFAULT_PIPELINE,
    ) -> Envelope:
        """The envelope of ``command`` sent by ``actor`` (the authenticated principal: whether
        the command may name another was decided by the policy before), in a store of time
        zone ``tz`` that accepts ``survey_topics`` and works with ``pipeline``."""
        occurred_at = command.occurred_at or now
        if occurred_at > now + FUTURE_SKEW:
            raise FutureBusinessTime(occurred_at.isoformat(), (now + FUTURE_SKEW).isoformat())
        if occurred_at < EARLIEST_BUSINESS_TIME:
            raise InvalidValue("occurred_at", occurred_at.isoformat(), "is before 1900")
        return cls(
            recorded_at=now,
            occurred_at=occurred_at,
            actor=actor,
            command_id=command.command_id,
            correlation_id=command.correlation_id,
            causation_id=command.causation_id,
            reason=command.reason,
            on_behalf_of=command.on_behalf_of if isinstance(command.on_behalf_of, str) else None,
            tz=tz,
            survey_topics=survey_topics,
            pipeline=pipeline,
        )


class Batch:
    """Numbers the events of one decision and lets later rules see earlier events' effect."""

    def __init__(self, customer_id: UUID, version: int, envelope: Envelope) -> None:
        self.customer_id, self.version, self.envelope = customer_id, version, envelope
        self.events: list[ev.CustomerEvent] = []

    def add(self, cls: type[E], **fields: Any) -> E:
        self.version += 1
        e = self.envelope
        event = cls(
            originator_id=self.customer_id,
            originator_version=self.version,
            recorded_at=e.recorded_at,
            occurred_at=e.occurred_at,
            actor=e.actor,
            command_id=e.command_id,
            correlation_id=e.correlation_id,
            causation_id=e.causation_id,
            reason=e.reason,
            **fields,
        )
        if e.on_behalf_of is not None:  # set only when given: other events keep their bytes
            msgspec.structs.force_setattr(event, "on_behalf_of", e.on_behalf_of)
        self.events.append(event)
        return event
