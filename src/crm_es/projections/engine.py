"""The projection engine shared by every read model: catch up, follow, rebuild, status.

Exactly once: each batch of events changes the read model's tables *and* advances its tracking
position in one transaction, after re-reading (and on PostgreSQL locking) that position; a second
worker, a crash or a retry can therefore never apply an event twice or skip one.

Following the log as it grows (a worker per read model, leader election, outages) is
:mod:`.follower`'s job, on top of this engine.

Rebuild without downtime: a read model's tables carry a generation number
(``rm_<model>_<table>_g<N>``). A rebuild fills generation N+1 from the first event while reports
keep reading generation N, then switches the active generation in one transaction and drops N.
The fill is the same batches, statements and transactions as a catch-up; only the scheduling
differs: a helper thread reads and decodes the next batches while this one writes (see
:mod:`.prefetch`), and the keys and indexes are built once the fill reaches the head.

Where the time goes is in :mod:`.event_feed` (reading, slim decoding) and :mod:`.batch_writer`
(grouping statements into bulk calls); docs/performance.md has the measurements.

We track positions in our own ``crm_read_models`` table rather than the library's tracking recorder
because that table is single-row per upstream application and cannot hold a second generation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from crm_es.domain.events import PersonalDataErased
from crm_es.projections.batch_writer import BatchWriter, Op
from crm_es.projections.feed import EventFeed, RowKeys
from crm_es.projections.generations import (
    STATE_TABLE,
    active_generation,
    create_generation,
    create_indexes,
    drop_generation,
    register_personal_tables,
    table_names,
)
from crm_es.projections.prefetch import Prefetcher
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT, Database, Tx
from crm_es.store.store import HasStore, Store, store_of
from crm_es.store.url import schema_lock
from crm_es.store.wipe import wipe

__all__ = ["ProjectionEngine", "ReadModel", "RowKeys", "Statement"]

DEFAULT_BATCH: Final = 1000

Progress = Callable[[int, int], None]  # (position, head)
Route = list[tuple[int, Handler]]  # (lane index, handler) for one topic


class ModelStatus(msgspec.Struct, frozen=True):
    name: str
    generation: int
    position: int
    head: int
    lag: int
    schema_version: int
    code_schema_version: int
    rebuild_needed: bool


class Lane:
    """One read model's generation being brought forward, and where it stands."""

    __slots__ = ("generation", "model", "position")

    def __init__(self, model: ReadModel, generation: int, position: int) -> None:
        self.model, self.generation, self.position = model, generation, position


class Prepared:
    """A batch read and turned into each lane's writer calls, the position it ends at, and
    whether it erases someone's personal data."""

    __slots__ = ("changes", "erases", "position")

    def __init__(self, position: int, changes: list[list[Op]], erases: bool) -> None:
        self.position, self.changes, self.erases = position, changes, erases


class StaleReadModel(Exception):
    """The stored generation was built by other code; it must be rebuilt."""


class ProjectionEngine:
    def __init__(
        self,
        source: Store | HasStore,
        models: Sequence[ReadModel],
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        """``source``: the store, or the service that owns it (``ProjectionEngine(crm, …)``)."""
        self.store = store = store_of(source)
        self.models = {m.name: m for m in models}
        self.batch_size = batch_size
        self.db = Database(store.config)
        self.feed = EventFeed(store, self.db)
        self.writer = BatchWriter(self.db.postgres)
        for model in models:
            model.bind(store)
        self._handlers = {m.name: m.handlers() for m in models}
        with schema_lock(store.config), self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name {TEXT} NOT NULL, "
                f"generation {BIGINT} NOT NULL, position {BIGINT} NOT NULL, "
                f"schema_version {BIGINT} NOT NULL, active {BIGINT} NOT NULL, "
                "PRIMARY KEY (name, generation))"
            )
            for model in models:
                active = active_generation(tx, model.name)
                if active is None:
                    create_generation(tx, model, 1, active=True)
                    create_indexes(tx, model, 1)
                elif tx.creates_tables:  # a store's tables from before the registry of
                    # personal tables; registered by the owner (a login of `roles init` may
                    # not write the registry, which the erase function trusts)
                    register_personal_tables(tx, model, active[0])

    def close(self) -> None:
        self.db.close()

    def model(self, name: str) -> ReadModel:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise KeyError(f"unknown read model {name!r} (known: {known})") from None

    # --- generations --------------------------------------------------------------------------

    def table_names(self, model: ReadModel, generation: int) -> dict[str, str]:
        return table_names(model, generation)

    def active_tables(self, tx: Tx, name: str) -> dict[str, str]:
        """Physical names of the tables reports should read for read model ``name``."""
        model = self.model(name)
        active = active_generation(tx, name)
        assert active is not None
        return table_names(model, active[0])

    def all_active_tables(self, tx: Tx) -> dict[str, str]:
        """Physical names of every read model's active tables (logical -> physical)."""
        tables: dict[str, str] = {}
        for name in self.models:
            tables.update(self.active_tables(tx, name))
        return tables

    # --- processing ---------------------------------------------------------------------------

    def head(self) -> int:
        return self.store.head()

    def _routes(self, lanes: Sequence[Lane]) -> dict[str, Route]:
        """Topic -> the lanes whose read model handles it, with the handler."""
        routes: dict[str, Route] = {}
        for i, lane in enumerate(lanes):
            for cls, handler in self._handlers[lane.model.name].items():
                routes.setdefault(cls.TOPIC, []).append((i, handler))
        return routes

    def _prepare(self, routes: dict[str, Route], lanes: Sequence[Lane], position: int,
                 stop: int | None) -> Prepared | None:  # fmt: skip
        """Read the events after ``position`` (up to ``stop``), decode them once for every lane
        and turn them into each lane's statements and those into the writer's calls; None when
        there is nothing new."""
        rows = self.feed.read(position, stop, self.batch_size)
        if not rows:
            return None
        routed, events, keys = self.feed.decode(rows, routes)
        changes: list[list[Statement]] = [[] for _ in lanes]
        for route, event, key in zip(routed, events, keys, strict=True):
            for i, handler in route:
                changes[i] += handler(event, key)
        plan = self.writer.plan
        ops = [
            plan(table_names(lane.model, lane.generation), statements)
            for lane, statements in zip(lanes, changes, strict=True)
        ]
        erases = any(topic == PersonalDataErased.TOPIC for _, topic, _ in rows)
        return Prepared(int(rows[-1][0]), ops, erases)

    def _apply(self, lanes: Sequence[Lane], prepared: Prepared) -> None:
        """Apply a prepared batch to every lane (all at the batch's start) in one transaction,
        each lane's position checked and advanced with its rows."""
        with self.db.transaction() as tx:
            for lane, ops in zip(lanes, prepared.changes, strict=True):
                rows = tx.query(
                    f"SELECT position FROM {STATE_TABLE} WHERE name = ? AND generation = ?"
                    + tx.for_update(),
                    (lane.model.name, lane.generation),
                )
                if not rows or int(rows[0][0]) != lane.position:
                    # Another worker moved this lane on: leave it, re-read its position.
                    lane.position = int(rows[0][0]) if rows else lane.position
                    continue
                self.writer.execute(tx, ops)
                tx.execute(
                    f"UPDATE {STATE_TABLE} SET position = ? WHERE name = ? AND generation = ?",
                    (prepared.position, lane.model.name, lane.generation),
                )
                lane.position = prepared.position
        if prepared.erases:
            self._wipe_personal_tables(lanes)

    def _wipe_personal_tables(self, lanes: Sequence[Lane]) -> None:
        """After an erasure: PostgreSQL keeps a deleted row's bytes in the table's pages until
        they are rewritten; the tables that hold personal data are (they are small). SQLite
        overwrites freed bytes itself (``secure_delete``, see :mod:`crm_es.store.database`);
        its write-ahead log is emptied."""
        tables = []
        for lane in lanes:
            names = table_names(lane.model, lane.generation)
            tables += [names[table] for table in sorted(lane.model.personal_tables)]
        wipe(self.db, tables)

    def _drain(self, lanes: list[Lane], progress: Progress | None) -> None:
        """Bring every lane to the head. Lanes at the same position share reads and decoding;
        a lane behind the others catches up to them first, then they move together."""
        head = self.head()
        while lanes:
            low = min(lane.position for lane in lanes)
            together = [lane for lane in lanes if lane.position == low]
            ahead = [lane.position for lane in lanes if lane.position > low]
            stop = min(ahead) if ahead else None
            prepared = self._prepare(self._routes(together), together, low, stop)
            if prepared is None:
                if ahead:  # a gap up to the next lane: nothing to apply in between
                    for lane in together:
                        lane.position = min(ahead)
                    continue
                return
            self._apply(together, prepared)
            if progress is not None:
                head = max(head, prepared.position)
                progress(prepared.position, head)

    def _fill(self, lanes: list[Lane], progress: Progress | None) -> None:
        """Bring fresh lanes of a rebuild (all at one position, written by nobody else) to the
        head: a helper thread reads and decodes the next batches while this one writes."""
        routes = self._routes(lanes)
        head = self.head()

        def prepare(position: int) -> Prepared | None:
            return self._prepare(routes, lanes, position, None)

        with Prefetcher(prepare, lanes[0].position, self.db.release) as batches:
            for prepared in batches:
                self._apply(lanes, prepared)
                if any(lane.position != prepared.position for lane in lanes):
                    msg = "another worker wrote to a generation being rebuilt"
                    raise RuntimeError(msg)
                if progress is not None:
                    head = max(head, prepared.position)
                    progress(prepared.position, head)

    def _lanes(self, names: Sequence[str]) -> list[Lane]:
        lanes = []
        with self.db.transaction() as tx:
            for name in names:
                model = self.model(name)
                active = active_generation(tx, name)
                assert active is not None
                generation, position, schema_version = active
                if schema_version != model.schema_version:
                    msg = (
                        f"read model {name!r} was built by schema v{schema_version}, the code is "
                        f"v{model.schema_version}: run `crm-es projections rebuild {name}`"
                    )
                    raise StaleReadModel(msg)
                lanes.append(Lane(model, generation, position))
        return lanes

    def catch_up(self, name: str, progress: Progress | None = None) -> int:
        """Apply every event after the read model's position; returns the new position."""
        (lane,) = self._lanes([name])
        self._drain([lane], progress)
        return lane.position

    def catch_up_many(self, names: Sequence[str], progress: Progress | None = None) -> None:
        """Bring several read models up to date, decoding each event once for all of them."""
        self._drain(self._lanes(names), progress)

    def catch_up_all(self) -> None:
        """Bring every read model up to date (read-your-writes for embedded SQLite use)."""
        self.catch_up_many(list(self.models))

    def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Fill a fresh generation from the first event, then switch to it atomically."""
        return self.rebuild_many([name], progress)[name]

    def rebuild_many(
        self, names: Sequence[str], progress: Progress | None = None
    ) -> dict[str, int]:
        """Rebuild several read models in one pass over the events; each switches atomically
        to its new generation when complete (reports read the old one until then).

        The new generation is filled without its keys and indexes, which are built once the
        fill reaches the head (sorting beats a random B-tree write per row); the events that
        arrived meanwhile are then applied with them in place, and the generations switch.
        """
        lanes = []
        with self.db.transaction() as tx:
            for name in names:
                model = self.model(name)
                rows = tx.query(
                    f"SELECT MAX(generation) FROM {STATE_TABLE} WHERE name = ?", (name,)
                )
                generation = int(rows[0][0] or 0) + 1
                create_generation(tx, model, generation, active=False)
                lanes.append(Lane(model, generation, 0))
        self._fill(lanes, progress)
        with self.db.transaction() as tx:
            # SQLite sorts for CREATE INDEX with helper threads when allowed (measured on 1M
            # purchases: 1.5-1.7 s -> 1.1-1.3 s); a connection setting, restored after.
            threads = None if tx.postgres else int(tx.query("PRAGMA threads")[0][0])
            if threads is not None:
                tx.execute("PRAGMA threads = 2")
            for lane in lanes:
                create_indexes(tx, lane.model, lane.generation)
            if threads is not None:
                tx.execute(f"PRAGMA threads = {threads}")
        self._drain(list(lanes), progress)
        with self.db.transaction() as tx:
            for lane in lanes:
                name = lane.model.name
                tx.execute(f"UPDATE {STATE_TABLE} SET active = 0 WHERE name = ?", (name,))
                tx.execute(
                    f"UPDATE {STATE_TABLE} SET active = 1 WHERE name = ? AND generation = ?",
                    (name, lane.generation),
                )
                stale = tx.query(
                    f"SELECT generation FROM {STATE_TABLE} WHERE name = ? AND generation <> ?",
                    (name, lane.generation),
                )
                for (generation,) in stale:
                    drop_generation(tx, lane.model, int(generation))
        return {lane.model.name: lane.position for lane in lanes}

    def status(self) -> list[ModelStatus]:
        head = self.head()
        out = []
        with self.db.reading() as tx:  # a reader: never wait behind (or block) a writer
            for name, model in self.models.items():
                active = active_generation(tx, name)
                assert active is not None
                generation, position, schema_version = active
                out.append(
                    ModelStatus(
                        name=name,
                        generation=generation,
                        position=position,
                        head=head,
                        lag=max(0, head - position),
                        schema_version=schema_version,
                        code_schema_version=model.schema_version,
                        rebuild_needed=schema_version != model.schema_version,
                    )
                )
        return out
