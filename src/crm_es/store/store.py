"""One opened store: events, snapshots, idempotency records and customer keys behind one URL.

The ``eventsourcing`` library builds the recorders from the environment the URL turns into
(``crm_es.store.url``); this class puts our codec (the stored byte layout), the hash-chained
event store and the per-customer key cipher on top, and is what every room above reads and
writes through: the service (:mod:`crm_es.app`), the projections, the reports and the audit.
Nothing here decides anything about customers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    IntegrityError,
)
from eventsourcing.utils import Environment

from crm_es.domain.customer import Customer, CustomerSnapshot, evolve
from crm_es.store.codec import CustomerEventMapper
from crm_es.store.database import Database
from crm_es.store.event_store import ChainedEventStore
from crm_es.store.keys import AesKeyWrapper, KeyStore, SqlKeyStore
from crm_es.store.personal_data import CustomerKeyCipher
from crm_es.store.recorders import CommandRecord
from crm_es.store.secrets import (
    MASTER_KEY_FILE_SETTING,
    MasterKeyError,
    StoreSecrets,
    master_key_for,
)
from crm_es.store.settings import StoreSettings
from crm_es.store.url import (
    StoreConfig,
    ensure_postgres_schema,
    parse_store_url,
    resolve_url,
    schema_lock,
)

# The library's environment prefix: ``CRM_POSTGRES_…`` settings win over ``POSTGRES_…`` ones.
APPLICATION_NAME = "crm"
# A customer gets a snapshot each time its stream crosses a multiple of this many events.
SNAPSHOT_INTERVAL = 100


class CommandLog(Protocol):
    """The idempotency records (``crm_commands``) of either store's recorder."""

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]: ...


class Store:
    """The persistence of one installation, opened from a URL (``CRM_ES_DB`` by default)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        key_store: KeyStore | None = None,
        snapshot_interval: int = SNAPSHOT_INTERVAL,
    ) -> None:
        self.config: StoreConfig = parse_store_url(resolve_url(url))
        self.snapshot_interval = snapshot_interval
        self.env = Environment(
            APPLICATION_NAME,
            {**os.environ, **self.config.env, "IS_SNAPSHOTTING_ENABLED": "y", **(env or {})},
        )
        self.db = Database(self.config)  # our own small tables: settings, keys
        with schema_lock(self.config):  # creating tables: one process at a time
            ensure_postgres_schema(self.config)
            self.settings = StoreSettings(self.db)
            self.secrets = self._open_secrets()
            self.factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(self.env)
            self.recorder: ApplicationRecorder = self.factory.application_recorder()
            snapshots: AggregateRecorder = self.factory.aggregate_recorder(purpose="snapshots")
            keys = key_store or SqlKeyStore(self.config, AesKeyWrapper(self.secrets.wrap_key))
        self.personal_data = CustomerKeyCipher(keys)
        self.codec = self.reader()
        self.events = ChainedEventStore(self.codec, self.recorder)
        self.snapshots: EventStore[UUID] = EventStore(self.codec, snapshots)

    def _open_secrets(self) -> StoreSecrets:
        """The master key, checked against the value the store recorded when it was first
        opened (a store opened with another key would read every personal field as garbage)."""
        recorded = self.settings.get("master_key_check")
        key, source = master_key_for(
            self.config, self.env.get(MASTER_KEY_FILE_SETTING), new_store=recorded is None
        )
        secrets = StoreSecrets(key)
        if self.settings.claim("master_key_check", secrets.check_value()) != secrets.check_value():
            msg = f"the master key from {source} is not this store's: it was set up with another"
            raise MasterKeyError(msg)
        self.master_key_source = source
        return secrets

    def reader(self, personal_fields: frozenset[str] | None = None) -> CustomerEventMapper:
        """A codec that decrypts only ``personal_fields`` (None: all) when reading: bulk readers
        such as the projections ask for the one they keep."""
        return CustomerEventMapper(
            compressor=self.factory.compressor(),
            cipher=self.factory.cipher(),
            personal_data=self.personal_data,
            personal_fields=personal_fields,
        )

    @property
    def command_log(self) -> CommandLog:
        return cast(CommandLog, self.recorder)

    def head(self) -> int:
        """The last notification id (0 for an empty store)."""
        return self.recorder.max_notification_id() or 0

    # --- customers ------------------------------------------------------------------------------

    def load(self, customer_id: UUID, version: int | None = None) -> Customer | None:
        """A customer's state (at stream ``version``), or None if it has no events.

        From its latest snapshot of the current schema at or before ``version``, then the
        events after it; a snapshot of another schema is ignored and the stream replayed.
        """
        customer: Customer | None = None
        after: int | None = None
        for stored in self.snapshots.get(customer_id, desc=True, lte=version):
            if isinstance(stored, CustomerSnapshot) and stored.schema == CustomerSnapshot.SCHEMA:
                customer, after = stored.restore(), stored.originator_version
                break
        events = self.events.get(customer_id, gt=after, lte=version)
        return evolve(customer, events)

    def take_snapshot(self, customer: Customer) -> None:
        """Snapshot ``customer``'s state (a snapshot of that version already there is the same
        state: nothing to do)."""
        with contextlib.suppress(IntegrityError):
            self.snapshots.put([CustomerSnapshot.take(customer)])

    def snapshot_if_due(self, customer: Customer, first_new_version: int) -> None:
        """Snapshot when events from ``first_new_version`` on crossed a multiple of the
        interval (every path that stores events calls this once they committed)."""
        interval = self.snapshot_interval
        if customer.version // interval > (first_new_version - 1) // interval:
            self.take_snapshot(customer)

    def close(self) -> None:
        self.factory.close()
        self.personal_data.close()
        self.db.close()


class HasStore(Protocol):
    """Anything that owns an opened store (the service does)."""

    @property
    def store(self) -> Store: ...


def store_of(source: Store | HasStore) -> Store:
    """The store itself, or the store of its owner (``Reports(crm)`` and ``Reports(store)``)."""
    return source if isinstance(source, Store) else source.store
