"""The queries on one customer — its state, as of a past time, its view, its history — as the
principal may see them, each read of personal data written to the access log.

The policy (:mod:`crm_es.domain.policy`) decides by the customer's current owner, whatever past
state is asked for; a principal without the right to personal data gets it masked, and a masked
read is not logged (it showed none). A read that shows personal data is logged before it is
returned: who, when, which customer, which fields, and why (``purpose``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from crm_es.app.views import PERSONAL_FIELDS, customer_view
from crm_es.domain.as_of import customer_as_of
from crm_es.domain.customer import Customer
from crm_es.domain.errors import CustomerNotFound, InvalidValue, PermissionDenied
from crm_es.domain.events import PERSONAL_PATHS, CustomerEvent
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.masking import mask_customer, mask_event
from crm_es.domain.policy import CustomerRead, check_customer_read
from crm_es.domain.principals import Principal
from crm_es.domain.times import Moment, moment

if TYPE_CHECKING:
    from crm_es.store.store import Store

# Stream versions are stored as 64-bit integers on both stores.
MAX_VERSION: Final = 2**63 - 1

STATE_FIELDS: Final = (*PERSONAL_FIELDS, "tags")


class CustomerReads:
    """Mixed into the service: ``store``, ``principal`` and ``clock`` come from it."""

    store: Store
    principal: Principal
    clock: Callable[[], datetime]

    def get_customer(
        self, customer: str | UUID, *, version: int | None = None, purpose: str | None = None
    ) -> Customer:
        """Current state (or the state at stream ``version``) of a customer."""
        _check_version(version)
        _may_read_some(self.principal, "read_customer", customer)
        customer_id = customer_id_for_ref(customer)
        found = self.store.load(customer_id, version)
        if found is None:
            raise CustomerNotFound(str(customer))
        _check_reached(customer, found.version, version)
        current = found if version is None else self.store.load(customer_id)
        return self._readable(found, current, "read_customer", customer, purpose)

    def get_customer_as_of(
        self,
        customer: str | UUID,
        *,
        as_of: Moment = None,
        known_at: Moment = None,
        version: int | None = None,
        purpose: str | None = None,
    ) -> Customer:
        """The customer as the world stood at business time ``as_of`` (events that occurred by
        then), as recorded by ``known_at`` (events recorded by then), up to stream ``version``;
        any combination. A bare date means the end of that day in the store's time zone."""
        _check_version(version)
        _may_read_some(self.principal, "read_customer", customer)
        tz = self.store.timezone
        business = moment("as_of", as_of, tz=tz)
        knowledge = moment("known_at", known_at, tz=tz)
        customer_id = customer_id_for_ref(customer)
        events = list(self.store.events.get(customer_id, lte=version))
        if events:
            _check_reached(customer, events[-1].originator_version, version)
        state = customer_as_of(events, str(customer), as_of=business, known_at=knowledge)
        current = self.store.load(customer_id)
        return self._readable(state, current, "read_customer", customer, purpose)

    def view(
        self,
        customer: str | UUID,
        *,
        as_of: Moment = None,
        known_at: Moment = None,
        version: int | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-ready view of a customer (``crm-es show``): now, or as of ``as_of`` as known
        at ``known_at``, with the tier and points as of that time."""
        if as_of is None and known_at is None:
            state = self.get_customer(customer, version=version, purpose=purpose)
        else:
            state = self.get_customer_as_of(
                customer, as_of=as_of, known_at=known_at, version=version, purpose=purpose
            )
        at = moment("as_of", as_of, tz=self.store.timezone) or self.clock()
        return customer_view(state, at, self.store.timezone)

    def history(
        self, customer: str | UUID, *, purpose: str | None = None
    ) -> Iterator[CustomerEvent]:
        """Every event of a customer's stream, oldest first (personal data masked for a
        principal without the right to it)."""
        _may_read_some(self.principal, "history", customer)
        customer_id = customer_id_for_ref(customer)
        current = self.store.load(customer_id)
        if current is None:
            raise CustomerNotFound(str(customer))
        if check_customer_read(self.principal, "history", current.owner, customer):
            self.log_reads([customer_id], "history", PERSONAL_PATHS, purpose)
            yield from self.store.events.get(customer_id)
        else:
            yield from (mask_event(e) for e in self.store.events.get(customer_id))

    def names(
        self, customer_ids: list[UUID], *, purpose: str | None = None
    ) -> dict[UUID, str | None]:
        """The names of those customers the principal may see (a report table's name column);
        the others are left out. One access-log entry for all of them."""
        names: dict[UUID, str | None] = {}
        shown = []
        for customer_id in customer_ids:
            state = self.store.load(customer_id)
            if state is None:
                continue
            try:
                clear = check_customer_read(self.principal, "read_customer", state.owner)
            except PermissionDenied:
                continue
            names[customer_id] = state.name if clear else mask_customer(state).name
            shown += [customer_id] if clear else []
        self.log_reads(shown, "list", ("name",), purpose)
        return names

    def log_reads(
        self, customer_ids: list[UUID], action: str, fields: tuple[str, ...], purpose: str | None
    ) -> None:
        """Write that the principal read ``fields`` of these customers to the access log."""
        self.store.access_log.record(
            self.principal.name, customer_ids, action, fields, purpose, self.clock()
        )

    def _readable(
        self,
        state: Customer,
        current: Customer | None,
        action: CustomerRead,
        customer: object,
        purpose: str | None,
    ) -> Customer:
        """``state`` as the principal may see it (or PermissionDenied); decided by the current
        owner, whatever past state was asked for. A read in clear is logged."""
        owner = current.owner if current is not None else state.owner
        if check_customer_read(self.principal, action, owner, customer):
            self.log_reads([state.id], "show", STATE_FIELDS, purpose)
            return state
        return mask_customer(state)


def _may_read_some(principal: Principal, action: CustomerRead, customer: object) -> None:
    """Refuse at once a principal that may read no customer this way (an analyst), before
    anything is loaded: on PostgreSQL its database role may not even read the events."""
    check_customer_read(principal, action, None, customer)


def _check_version(version: int | None) -> None:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise InvalidValue("version", version, f"stream versions run from 1 to {MAX_VERSION}")


def _check_reached(customer: str | UUID, last: int, version: int | None) -> None:
    """A version past the end of the stream is an error, not quietly the last one."""
    if version is not None and version > last:
        raise InvalidValue("version", version, f"{customer}'s history has {last} versions")
