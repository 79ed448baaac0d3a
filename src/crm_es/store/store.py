"""One opened store: events, snapshots, idempotency records and customer keys behind one URL.

The ``eventsourcing`` library builds the recorders from the environment the URL turns into
(``crm_es.store.url``); this class puts our codec (the stored byte layout), the hash-chained
event store and the per-customer key cipher on top, and is what every room above reads and
writes through: the service (:mod:`crm_es.app`), the projections, the reports and the audit.
Nothing here decides anything about customers.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from datetime import UTC, tzinfo
from typing import Any, Final, Protocol, cast
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    IntegrityError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from crm_es.domain.customer import Customer, evolve
from crm_es.domain.errors import CrmError
from crm_es.domain.events import CustomerEvent
from crm_es.domain.snapshot import CustomerSnapshot
from crm_es.store.access_log import AccessLog
from crm_es.store.codec import (
    CustomerEventMapper,
    StoredRow,
    snapshot_seal_ok,
    stored_hash,
    stored_prev_hash,
)
from crm_es.store.database import Database
from crm_es.store.event_store import ChainedEventStore
from crm_es.store.keys import AesKeyWrapper, KeyStore, SqlKeyStore
from crm_es.store.personal_data import CustomerKeyCipher
from crm_es.store.recorders import COMMANDS_TABLE, CommandRecord, seal_plain_hashes
from crm_es.store.secrets import (
    MASTER_KEY_FILE_SETTING,
    MasterKeyError,
    StoreSecrets,
    master_key_for,
)
from crm_es.store.settings import StoreSettings
from crm_es.store.stream_batches import latest_snapshot_rows, stream_rows_after
from crm_es.store.url import (
    StoreConfig,
    ensure_postgres_schema,
    parse_store_url,
    resolve_url,
    schema_lock,
)
from crm_es.store.wipe import forget_personal_rows, wipe

# The library's environment prefix: ``CRM_POSTGRES_…`` settings win over ``POSTGRES_…`` ones.
APPLICATION_NAME = "crm"
# A customer gets a snapshot each time its stream crosses a multiple of this many events.
SNAPSHOT_INTERVAL = 100
# Set once the keys an older version kept in clear are wrapped and its plain payload hashes
# sealed: a clear key or a plain hash found after that was planted, and is refused.
OLDER_SECRETS_SEALED = "older_secrets_sealed"


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
        self.db = Database(self.config)  # our own small tables: settings, keys
        # A PostgreSQL role that does not own the schema (those of ``crm-es roles init``)
        # creates nothing: the owner did, and such a role may not (see database.py).
        owner = self.db.creates_tables
        self.env = Environment(
            APPLICATION_NAME,
            {
                **os.environ,
                **self.config.env,
                "IS_SNAPSHOTTING_ENABLED": "y",
                **({} if owner else {"CREATE_TABLE": "n"}),
                **(env or {}),
            },
        )
        with schema_lock(self.config):  # creating tables: one process at a time
            if owner:
                ensure_postgres_schema(self.config)
            self.settings = StoreSettings(self.db)
            self.access_log = AccessLog(self.db)  # who read whose personal data
            self.secrets = self._open_secrets()
            self.factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(self.env)
            self.recorder: ApplicationRecorder = self.factory.application_recorder()
            snapshots: AggregateRecorder = self.factory.aggregate_recorder(purpose="snapshots")
            self._add_positions(snapshots)
            sql_keys = SqlKeyStore(self.config, AesKeyWrapper(self.secrets.wrap_key))
            self._seal_older_secrets(sql_keys)
            keys: KeyStore = sql_keys
            if key_store is not None:
                sql_keys.close()
                keys = key_store
        forget: Callable[[Sequence[UUID]], None] | None = self._forget_personal_rows
        if keys is sql_keys and sql_keys.through_functions:
            forget = None  # the database's erase function deletes the read models' rows too
        self.personal_data = CustomerKeyCipher(keys, on_shred=forget)
        self.timezone_name = self.settings.get("timezone") or "UTC"
        self._timezone = zone(self.timezone_name)
        self._zone_fixed = False
        self.codec = self.reader()
        self.envelope_reader = self.reader(personal_fields=frozenset())  # decrypts nothing
        self.events = ChainedEventStore(self.codec, self.recorder)
        self.snapshots: EventStore[UUID] = EventStore(self.codec, snapshots)

    def _forget_personal_rows(self, customer_ids: Sequence[UUID]) -> None:
        """What read models copied of erased customers' personal data goes with their keys."""
        tables = forget_personal_rows(self.db, customer_ids)
        if tables:
            wipe(self.db, tables)

    def _seal_older_secrets(self, keys: SqlKeyStore) -> None:
        """The first time a store is opened by this version: an older version's clear keys are
        wrapped and its plain payload hashes sealed (both idempotent if two processes race)."""
        if self.settings.get(OLDER_SECRETS_SEALED) is None:
            keys.wrap_clear_keys()
            seal_plain_hashes(self.db, self.secrets.idempotency_key)
            self.settings.claim(OLDER_SECRETS_SEALED, "yes")

    def _open_secrets(self) -> StoreSecrets:
        """The master key, checked against the value the store recorded when it was first
        opened (a store opened with another key would read every personal field as garbage)."""
        recorded = self.settings.get("master_key_check")
        key, source = master_key_for(
            self.config, self.env.get(MASTER_KEY_FILE_SETTING), new_store=recorded is None
        )
        secrets = StoreSecrets(key)
        check = secrets.check_value()
        # Claimed only when missing: a role that may only read the settings opens the store too.
        if (recorded or self.settings.claim("master_key_check", check)) != check:
            msg = f"the master key from {source} is not this store's: it was set up with another"
            raise MasterKeyError(msg)
        self.master_key_source = source
        return secrets

    def _add_positions(self, snapshots: AggregateRecorder) -> None:
        """Tables of stores created before records and snapshots had a position get the
        column (empty: covered by every checkpoint, see :mod:`crm_es.store.save_rows`)."""
        self.snapshots_table: str = snapshots.events_table_name  # type: ignore[attr-defined]
        self.events_table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        with self.db.transaction() as tx:
            for table in (COMMANDS_TABLE, self.snapshots_table):
                if tx.postgres:
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS position BIGINT")
                elif not any(r[1] == "position" for r in tx.query(f"PRAGMA table_info({table})")):
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN position BIGINT")

    def set_timezone(self, name: str) -> None:
        """Keep ``name`` (an IANA zone such as Asia/Shanghai) as the store's time zone: days,
        months and bare dates are cut in it. It cannot change once events are stored (every
        fact row's day was cut in the old one)."""
        tz = zone(name, new=True)
        current = self.settings.get("timezone") or "UTC"
        if name != current and self.head() > 0:
            msg = (
                f"the store's time zone is {current}; it cannot change once events are stored "
                "(start a new store, or import an export into one)"
            )
            raise CrmError(msg)
        self.settings.put("timezone", name)
        self.timezone_name, self._timezone = name, tz

    @property
    def timezone(self) -> tzinfo:
        """The store's time zone. Until the first event is stored it may still be set (by
        another process too), so it is read again each time; after that it is fixed."""
        if not self._zone_fixed:
            name = self.settings.get("timezone") or "UTC"
            if name != self.timezone_name:
                self.timezone_name, self._timezone = name, zone(name)
            # A role that may not read events (an analyst) takes the zone as set.
            self._zone_fixed = not self.reads_events or self.head() > 0
        return self._timezone

    @functools.cached_property
    def reads_events(self) -> bool:
        """Whether this connection's role may read the events (on PostgreSQL an analyst's
        may not: ``crm-es roles init`` gives it the read models only)."""
        if not self.config.is_postgres:
            return True
        with self.db.reading() as tx:
            rows = tx.query("SELECT has_table_privilege(current_user, ?, 'SELECT')",
                            (self.events_table,))  # fmt: skip
        return bool(rows[0][0])

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

        From its latest usable snapshot at or before ``version``, then the events after it. A
        snapshot is usable only if its seal verifies (it was written with this store's secret,
        unaltered), it summarises exactly the stored event at its version, and it has the
        current schema; any other is ignored and the stream replayed from an older one, or from
        the start.
        """
        for stored in self.snapshots.recorder.select_events(customer_id, desc=True, lte=version):
            snapshot = self._usable_snapshot(stored)
            if snapshot is None:
                continue
            # From the snapshot's own event on: it must be the one the snapshot is bound to.
            rows = self.events.select_rows(customer_id, snapshot.originator_version - 1, version)
            if not rows or stored_hash(rows[0][2]) != stored_prev_hash(stored.state):
                continue
            return evolve(snapshot.restore(), self.events.decode_rows(customer_id, rows[1:]))
        return evolve(None, self.events.get(customer_id, lte=version))

    def load_many(self, customer_ids: Sequence[UUID]) -> list[Customer | None]:
        """Each customer's current state, exactly as :meth:`load` gives it, in the order given:
        the latest snapshots of all of them in one query, then the events after each one's
        snapshot in another (per thousand customers; see :mod:`crm_es.store.stream_batches`).

        Decoded with the same codec and the same snapshot rules. A customer whose latest
        snapshot is not usable, or not bound to its stored event, is loaded by :meth:`load`
        itself, which falls back on an older snapshot: rare (a schema change, a forgery)."""
        ids = list({oid.int: oid for oid in customer_ids}.values())
        latest = latest_snapshot_rows(self.snapshots.recorder, ids)
        if latest is None:
            return [self.load(oid) for oid in customer_ids]
        states: dict[int, Customer | None] = {}
        snapshots: dict[int, tuple[CustomerSnapshot, bytes]] = {}
        wanted: list[tuple[UUID, int]] = []
        for oid in ids:
            row = latest.get(oid.int)
            if row is None:
                wanted.append((oid, 0))
                continue
            snapshot = self._usable_snapshot(StoredEvent(oid, *row))
            if snapshot is None:
                states[oid.int] = self.load(oid)
                continue
            snapshots[oid.int] = (snapshot, row[2])
            # From the snapshot's own event on: it must be the one the snapshot is bound to.
            wanted.append((oid, snapshot.originator_version - 1))
        streams = stream_rows_after(self.events.recorder, wanted)
        if streams is None:
            return [self.load(oid) for oid in customer_ids]
        decode = self.events.decode_rows
        for oid, _ in wanted:
            rows = streams.get(oid.int, [])
            taken = snapshots.get(oid.int)
            if taken is None:
                states[oid.int] = evolve(None, decode(oid, rows))
            elif not rows or stored_hash(rows[0][2]) != stored_prev_hash(taken[1]):
                states[oid.int] = self.load(oid)
            else:
                states[oid.int] = evolve(taken[0].restore(), decode(oid, rows[1:]))
                if len(rows) == 1:  # no event after the snapshot's: its event is the head
                    self.events.remember({oid.int: (rows[0][0], stored_hash(rows[0][2]))})
        return [states[oid.int] for oid in customer_ids]

    def _usable_snapshot(self, stored: StoredEvent) -> CustomerSnapshot | None:
        key = self.secrets.snapshot_key
        oid, version, topic, state = (
            stored.originator_id,
            stored.originator_version,
            stored.topic,
            stored.state,
        )
        if not snapshot_seal_ok(key, _uuid(oid), version, topic, state):
            return None
        try:
            snapshot = self.codec.decode_state(topic, state)
        except Exception:
            return None
        if not isinstance(snapshot, CustomerSnapshot) or snapshot.schema != CustomerSnapshot.SCHEMA:
            return None
        return snapshot

    def save(
        self,
        events: Sequence[CustomerEvent],
        commands: Sequence[CommandRecord] = (),
        snapshot_states: Sequence[Customer] = (),
    ) -> None:
        """Store events, their idempotency records, and snapshots of the states they lead to
        (bound to the events just encoded), in one transaction."""
        rows, heads = self.events.encode_rows(events)
        snapshots = [
            self.snapshot_row(state, heads[state.id.int][1] if state.id.int in heads else None)
            for state in snapshot_states
        ]
        stored = [StoredEvent(*row) for row in rows]
        self.recorder.insert_events(stored, commands=commands, snapshots=snapshots)
        self.events.remember(heads)

    def snapshot_row(self, customer: Customer, head_hash: bytes | None = None) -> StoredRow:
        """``customer``'s state as a snapshot row: bound to the stored event at its version
        (``head_hash``, read when not given) and sealed with the store's secret."""
        if head_hash is None:
            head_hash = self.events.head_hash(customer.id, customer.version)
        return self.codec.encode_snapshot(
            CustomerSnapshot.take(customer), head_hash, self.secrets.snapshot_key
        )

    def take_snapshot(self, customer: Customer) -> None:
        """Snapshot ``customer``'s state now, in a save of its own (a snapshot of that version
        already there is the same state: nothing to do)."""
        with contextlib.suppress(IntegrityError):
            self.recorder.insert_events([], snapshots=[self.snapshot_row(customer)])

    def snapshot_due(self, customer: Customer, first_new_version: int) -> bool:
        """Whether events from ``first_new_version`` on crossed a multiple of the interval:
        then the save that stores them stores a snapshot too."""
        interval = self.snapshot_interval
        return customer.version // interval > (first_new_version - 1) // interval

    def close(self) -> None:
        self.factory.close()
        self.personal_data.close()
        self.db.close()


class HasStore(Protocol):
    """Anything that owns an opened store (the service does)."""

    @property
    def store(self) -> Store: ...


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def store_of(source: Store | HasStore) -> Store:
    """The store itself, or the store of its owner (``Reports(crm)`` and ``Reports(store)``)."""
    return source if isinstance(source, Store) else source.store


# Names the tz database holds that mean the host's own zone or none at all: two hosts would cut
# days differently.
_HOST_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


def zone(name: str, *, new: bool = False) -> tzinfo:
    """The IANA time zone ``name`` (UTC itself as :data:`datetime.UTC`); ``new``: a name a
    user gives, checked against the zones of the tz database (a store's own was checked when
    it was kept)."""
    if name == "UTC":
        return UTC
    msg = f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai"
    if new and (name in _HOST_ZONES or name not in available_timezones()):
        raise CrmError(msg)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CrmError(msg) from None
