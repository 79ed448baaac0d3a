"""The projection engine shared by every read model: catch up, follow, rebuild, status.

Exactly once: each batch of events changes the read model's tables *and* advances its tracking
position in one transaction, after re-reading (and on PostgreSQL locking) that position; a second
worker, a crash or a retry can therefore never apply an event twice or skip one.

Rebuild without downtime: a read model's tables carry a generation number
(``rm_<model>_<table>_g<N>``). A rebuild fills generation N+1 from the first event while reports
keep reading generation N, then switches the active generation in one transaction and drops N.

We track positions in our own ``crm_read_models`` table rather than the library's tracking recorder
because that table is single-row per upstream application and cannot hold a second generation.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Final

import msgspec

from crm_es.app.database import BIGINT, TEXT, Database, Tx
from crm_es.app.service import CRM
from crm_es.app.store import schema_lock
from crm_es.domain.events import CustomerEvent
from crm_es.projections.timefmt import iso

STATE_TABLE: Final = "crm_read_models"
DEFAULT_BATCH: Final = 1000

Statement = tuple[str, tuple[Any, ...]]
Progress = Callable[[int, int], None]  # (position, head)


class ReadModel(ABC):
    """A read model: its tables and how each event changes them.

    ``tables`` maps a logical table name to its column definitions; SQL statements name tables as
    ``{logical}`` and use ``?`` placeholders. ``handle`` never reads: it returns upserts and
    deletes, so the engine can run a whole batch as a few ``executemany`` calls.
    Bump ``schema_version`` whenever the tables or the handling change: the engine then asks for a
    rebuild instead of mixing old and new rows.
    """

    name: ClassVar[str]
    schema_version: ClassVar[int]
    tables: ClassVar[dict[str, str]]
    indexes: ClassVar[dict[str, str]] = {}  # index name suffix -> "{table} (columns)"

    @abstractmethod
    def handle(self, event: CustomerEvent, row: RowKeys) -> Iterable[Statement]:
        """The statements that apply ``event`` (none if the event does not concern this model).

        ``row`` carries the event's customer id and times already formatted for rows: they are
        computed once per event for all read models.
        """


class RowKeys:
    """What every fact row starts with, formatted once per event."""

    __slots__ = ("customer_id", "occurred_at", "recorded_at")

    def __init__(self, event: CustomerEvent) -> None:
        self.customer_id = str(event.originator_id)
        self.occurred_at = iso(event.occurred_at)
        self.recorded_at = iso(event.timestamp)


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


class StaleReadModel(Exception):
    """The stored generation was built by other code; it must be rebuilt."""


def physical_table(model: str, table: str, generation: int) -> str:
    return f"rm_{model}_{table}_g{generation}"


class ProjectionEngine:
    def __init__(self, app: CRM, models: Sequence[ReadModel], batch_size: int = DEFAULT_BATCH):
        self.app = app
        self.models = {m.name: m for m in models}
        self.batch_size = batch_size
        self.db = Database(app.store)
        # Read models never hold personal data; of the encrypted fields only the birthday
        # (month and day, for the agenda) is needed, so only it is decrypted when projecting.
        self.reader = app.event_reader(personal_fields=frozenset({"birthday"}))
        self._sql_cache: dict[tuple[str, int, str], str] = {}
        with schema_lock(app.store), self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name {TEXT} NOT NULL, "
                f"generation {BIGINT} NOT NULL, position {BIGINT} NOT NULL, "
                f"schema_version {BIGINT} NOT NULL, active {BIGINT} NOT NULL, "
                "PRIMARY KEY (name, generation))"
            )
            for model in models:
                if self._active_generation(tx, model.name) is None:
                    self._create_generation(tx, model, 1, active=True)

    def close(self) -> None:
        self.db.close()

    def model(self, name: str) -> ReadModel:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise KeyError(f"unknown read model {name!r} (known: {known})") from None

    # --- generations --------------------------------------------------------------------------

    def _active_generation(self, tx: Tx, name: str) -> tuple[int, int, int] | None:
        """(generation, position, schema_version) of the active generation."""
        rows = tx.query(
            f"SELECT generation, position, schema_version FROM {STATE_TABLE} "
            "WHERE name = ? AND active = 1",
            (name,),
        )
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def _create_generation(self, tx: Tx, model: ReadModel, generation: int, active: bool) -> None:
        for table, columns in model.tables.items():
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {physical_table(model.name, table, generation)} "
                f"({columns})"
            )
        names = self.table_names(model, generation)
        for suffix, target in model.indexes.items():
            index = f"ix_{model.name}_{suffix}_g{generation}"
            tx.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {target.format(**names)}")
        tx.execute(
            f"INSERT INTO {STATE_TABLE} (name, generation, position, schema_version, active) "
            "VALUES (?, ?, 0, ?, ?)",
            (model.name, generation, model.schema_version, 1 if active else 0),
        )

    def _drop_generation(self, tx: Tx, model: ReadModel, generation: int) -> None:
        for table in model.tables:
            tx.execute(f"DROP TABLE IF EXISTS {physical_table(model.name, table, generation)}")
        tx.execute(
            f"DELETE FROM {STATE_TABLE} WHERE name = ? AND generation = ?", (model.name, generation)
        )

    def table_names(self, model: ReadModel, generation: int) -> dict[str, str]:
        return {t: physical_table(model.name, t, generation) for t in model.tables}

    def active_tables(self, tx: Tx, name: str) -> dict[str, str]:
        """Physical names of the tables reports should read for read model ``name``."""
        model = self.model(name)
        active = self._active_generation(tx, name)
        assert active is not None
        return self.table_names(model, active[0])

    # --- processing ---------------------------------------------------------------------------

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def _read_batch(self, position: int, stop: int | None) -> list[tuple[int, CustomerEvent]]:
        """The events after ``position`` (up to ``stop``), decoded once for every lane.

        Read with our own SQL rather than ``select_notifications``: the library builds a
        Notification and parses a UUID per row, which cost more than decoding the event itself.
        """
        table = self.app.recorder.events_table_name  # type: ignore[attr-defined]
        id_column = "notification_id" if self.db.postgres else "rowid"
        bound = f" AND {id_column} <= ?" if stop is not None else ""
        params: tuple[int, ...] = (position, self.batch_size) if stop is None else (
            position, stop, self.batch_size)  # fmt: skip
        with self.db.reading() as tx:
            rows = tx.query(
                f"SELECT {id_column}, topic, state FROM {table} WHERE {id_column} > ?{bound} "
                f"ORDER BY {id_column} LIMIT ?",
                params,
            )
        decode = self.reader.decode_state
        return [(int(i), decode(topic, bytes(state))) for i, topic, state in rows]

    def _process_batch(self, lanes: list[Lane], position: int, stop: int | None) -> int | None:
        """Apply the events after ``position`` to every lane (all at ``position``) in one
        transaction; returns the new position, or None when there was nothing new."""
        batch = self._read_batch(position, stop)
        if not batch:
            return None
        new_position = batch[-1][0]
        keyed = [(event, RowKeys(event)) for _, event in batch]
        changes = [
            (lane, [st for e, k in keyed for st in lane.model.handle(e, k)]) for lane in lanes
        ]
        with self.db.transaction() as tx:
            for lane, statements in changes:
                rows = tx.query(
                    f"SELECT position FROM {STATE_TABLE} WHERE name = ? AND generation = ?"
                    + tx.for_update(),
                    (lane.model.name, lane.generation),
                )
                if not rows or int(rows[0][0]) != lane.position:
                    # Another worker moved this lane on: leave it, re-read its position.
                    lane.position = int(rows[0][0]) if rows else lane.position
                    continue
                self._run(tx, lane.model, lane.generation, statements)
                tx.execute(
                    f"UPDATE {STATE_TABLE} SET position = ? WHERE name = ? AND generation = ?",
                    (new_position, lane.model.name, lane.generation),
                )
                lane.position = new_position
        return new_position

    def _run(self, tx: Tx, model: ReadModel, generation: int, statements: list[Statement]) -> None:
        """Run statements in order, grouping runs of the same SQL into one executemany."""
        names = self.table_names(model, generation)
        i = 0
        while i < len(statements):
            sql = statements[i][0]
            j = i
            while j < len(statements) and statements[j][0] == sql:
                j += 1
            key = (model.name, generation, sql)
            physical = self._sql_cache.get(key)
            if physical is None:
                physical = self._sql_cache[key] = sql.format(**names)
            tx.executemany(physical, [params for _, params in statements[i:j]])
            i = j

    def _drain(self, lanes: list[Lane], progress: Progress | None) -> None:
        """Bring every lane to the head. Lanes at the same position share reads and decoding;
        a lane behind the others catches up to them first, then they move together."""
        head = self.head()
        while lanes:
            low = min(lane.position for lane in lanes)
            together = [lane for lane in lanes if lane.position == low]
            ahead = [lane.position for lane in lanes if lane.position > low]
            new_position = self._process_batch(together, low, min(ahead) if ahead else None)
            if new_position is None:
                if ahead:  # a gap up to the next lane: nothing to apply in between
                    for lane in together:
                        lane.position = min(ahead)
                    continue
                return
            if progress is not None:
                head = max(head, new_position)
                progress(new_position, head)

    def _lanes(self, names: Sequence[str]) -> list[Lane]:
        lanes = []
        with self.db.transaction() as tx:
            for name in names:
                model = self.model(name)
                active = self._active_generation(tx, name)
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
        to its new generation when complete (reports read the old one until then)."""
        lanes = []
        with self.db.transaction() as tx:
            for name in names:
                model = self.model(name)
                rows = tx.query(
                    f"SELECT MAX(generation) FROM {STATE_TABLE} WHERE name = ?", (name,)
                )
                generation = int(rows[0][0] or 0) + 1
                self._create_generation(tx, model, generation, active=False)
                lanes.append(Lane(model, generation, 0))
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
                    self._drop_generation(tx, lane.model, int(generation))
        return {lane.model.name: lane.position for lane in lanes}

    def status(self) -> list[ModelStatus]:
        head = self.head()
        out = []
        with self.db.reading() as tx:  # a reader: never wait behind (or block) a writer
            for name, model in self.models.items():
                active = self._active_generation(tx, name)
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

    # --- following ----------------------------------------------------------------------------

    def follow(
        self,
        names: Sequence[str],
        stop: threading.Event,
        poll_interval: float = 0.5,
        progress: Progress | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        """Keep the read models up to date until ``stop`` is set (see :mod:`.follower`)."""
        from crm_es.projections.follower import Follower

        Follower(self, names, poll_interval, progress, log).run(stop)
