"""The base of every customer event: the envelope each one carries.

Every event of a customer stream is a :class:`CustomerEvent`: who (``actor``, and the person an
integration acted for), when (``recorded_at``, knowledge time, set by the system; ``occurred_at``,
business time) and why (``command_id``, ``correlation_id``, ``causation_id``, ``reason``). Kept
apart from the vocabulary of :mod:`crm_es.domain.events` so event groups may live in modules of
their own (:mod:`crm_es.domain.opportunity_events`) and still be registered there.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType


class CustomerEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every customer event: the envelope."""

    TOPIC: ClassVar[str]
    class_version: ClassVar[int] = 1
    # The envelope's reason is free text (why the command was issued): personal data too.
    PII_FIELDS: ClassVar[tuple[str, ...]] = ("reason",)

    originator_id: UUID
    originator_version: int
    recorded_at: datetime  # knowledge time: when the system recorded it (set by the system)
    occurred_at: datetime  # business time: when it happened in the world
    actor: str
    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    reason: str | None = None
    # The person an integration acted for (the actor is the integration): stored only when
    # given, so events without it keep their bytes.
    on_behalf_of: str | UnsetType = UNSET
