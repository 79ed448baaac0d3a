"""The snapshot of a customer's state, as the library's snapshot store keeps it: the msgpack
encoding of :class:`~crm_es.domain.customer.Customer` with its personal fields beside it, so
that the codec encrypts them as it does events' ``PII_FIELDS``."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from crm_es.domain.customer import PERSONAL_STATE_FIELDS, Customer, without_personal_data


class CustomerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot for the library's snapshot store: the msgpack encoding of the whole state.

    ``SCHEMA`` must be bumped whenever :class:`Customer` changes shape: a snapshot of another
    schema is never used, the customer is replayed from its events. Since schema 2 the
    personal fields travel beside ``state`` (blanked inside it) so the mapper encrypts them with
    the customer's key like any event's ``PII_FIELDS``.
    """

    TOPIC = "crm.customer.Snapshot"
    SCHEMA = 7  # 4: care tasks keep their scheduling time; 5: business times of the latest facts
    # 6: sales opportunities; 7: merges (merged_into, absorbed)
    PII_FIELDS = ("name", "email", "phone", "birthday", "tags[]", "churn_reason")
    originator_id: UUID
    originator_version: int
    recorded_at: datetime
    schema: int
    state: bytes
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: str | None = None
    tags: list[str] = []
    churn_reason: str | None = None

    @classmethod
    def take(cls, customer: Customer) -> CustomerSnapshot:
        personal = {f: getattr(customer, f) for f in PERSONAL_STATE_FIELDS}
        blanked = without_personal_data(customer)
        return cls(
            originator_id=customer.id,
            originator_version=customer.version,
            recorded_at=customer.last_recorded_at,
            schema=cls.SCHEMA,
            state=msgspec.msgpack.encode(blanked),
            **personal,
        )

    def restore(self) -> Customer:
        """The state this snapshot holds."""
        customer = msgspec.msgpack.decode(self.state, type=Customer)
        for field in PERSONAL_STATE_FIELDS:
            setattr(customer, field, getattr(self, field))
        return customer
