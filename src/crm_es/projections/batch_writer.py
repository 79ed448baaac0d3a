"""Running a batch's statements: table by table, each run of one SQL as few calls as possible.

Every statement names exactly one table and reads nothing, so statements on different tables
commute: a batch is split by table, keeping each table's statements in event order, and each run
of identical SQL within a table is sent together. A long run of plain inserts
(``INSERT INTO {t} (cols) VALUES (?, …)``, no conflict clause) goes in bulk:

- PostgreSQL: one ``COPY``, the rows in one round trip instead of one per row;
- SQLite (3.38+): the rows as one JSON array, ``INSERT … SELECT value ->> 0, … FROM
  json_each(?)``. ``executemany`` (or a multi-row ``VALUES``) steps SQLite once per row (or per
  100 rows) and takes the GIL back after each step, so the thread preparing the next batch and
  the writer hand the GIL to each other thousands of times a batch and mostly wait. One
  statement per run keeps the writer outside the GIL for the whole insert: SQLite spends more CPU
  on it (parsing the JSON), but on the other core. Measured on the 1.1M-event rebuild: 71-82k
  events/s with multi-row VALUES, 91-100k with JSON.

Row values are ``str``, ``int`` or ``None`` (what every path stores the same way); the first row
of each run is checked, and text holding NUL (which SQLite's JSON would cut) takes the
``executemany`` path. The rows, and so the tables, are the same whichever path runs them.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Final, NamedTuple

import msgspec

from crm_es.projections.read_model import Statement
from crm_es.store.database import Tx

_TABLE = re.compile(r"\{(\w+)\}")
_PLAIN_INSERT = re.compile(r"INSERT INTO \{\w+\} \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)")
# Below this many rows a COPY or a JSON array gains nothing over executemany.
BULK_MIN_ROWS: Final = 32
SQLITE_JSON: Final = sqlite3.sqlite_version_info >= (3, 38)  # the ->> operator
_PLAIN_VALUES = (str, int, type(None))
_json = msgspec.json.Encoder().encode


class _Plan:
    """What the writer knows about one SQL text: its table and, for a plain insert, columns."""

    __slots__ = ("copy_columns", "table")

    def __init__(self, sql: str) -> None:
        tables = set(_TABLE.findall(sql))
        if len(tables) != 1:
            msg = f"a read-model statement must name exactly one {{table}}: {sql!r}"
            raise ValueError(msg)
        (self.table,) = tables
        plain = _PLAIN_INSERT.fullmatch(sql)
        if plain and len(plain.group(1).split(",")) == sql.count("?"):
            self.copy_columns: str | None = plain.group(1)
        else:
            self.copy_columns = None


class Op(NamedTuple):
    """One call the writer makes: ``executemany`` of ``sql``, a ``COPY`` into ``table``
    (``columns``), or (``data`` set) one ``execute`` of ``sql`` with that JSON array."""

    sql: str
    rows: list[tuple[Any, ...]]
    table: str = ""
    columns: str = ""
    data: str | None = None


class BatchWriter:
    """Turns a batch's statements into calls (:meth:`plan`, pure Python: the thread that
    prepares batches does it) and makes them in a transaction (:meth:`execute`)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self._plans: dict[str, _Plan] = {}
        self._physical: dict[tuple[str, str], str] = {}
        self._json_sql: dict[tuple[str, str], str] = {}

    def _plan(self, sql: str) -> _Plan:
        plan = self._plans.get(sql)
        if plan is None:
            plan = self._plans[sql] = _Plan(sql)
        return plan

    def plan(self, names: dict[str, str], statements: list[Statement]) -> list[Op]:
        """The calls that run ``statements`` on the physical tables ``names``."""
        plans = self._plans
        # table -> runs of [sql, rows], in event order within the table
        runs: dict[str, list[tuple[str, list[tuple[Any, ...]]]]] = {}
        for sql, params in statements:
            plan = plans.get(sql) or self._plan(sql)
            table_runs = runs.get(plan.table)
            if table_runs is None:
                runs[plan.table] = [(sql, [params])]
            elif table_runs[-1][0] is sql or table_runs[-1][0] == sql:
                table_runs[-1][1].append(params)
            else:
                table_runs.append((sql, [params]))
        ops = []
        for table, table_runs in runs.items():
            physical = names[table]
            for sql, rows in table_runs:
                columns = plans[sql].copy_columns
                if columns is None or len(rows) < BULK_MIN_ROWS or not _plain(rows[0]):
                    ops.append(Op(self._sql(sql, names), rows))
                elif self.postgres:
                    ops.append(Op("", rows, physical, columns))
                else:
                    ops.append(self._json_op(self._sql(sql, names), columns, physical, rows))
        return ops

    @staticmethod
    def execute(tx: Tx, ops: list[Op]) -> None:
        for op in ops:
            if op.data is not None:
                tx.execute(op.sql, (op.data,))
            elif op.columns:
                tx.copy_rows(op.table, op.columns, op.rows)
            else:
                tx.executemany(op.sql, op.rows)

    def _json_op(self, sql: str, columns: str, physical: str, rows: list[tuple[Any, ...]]) -> Op:
        """SQLite: ``rows`` as one JSON array (executemany if SQLite lacks ->> or text has NUL)."""
        if not SQLITE_JSON:
            return Op(sql, rows)
        data = _json(rows).decode()
        if "\\u0000" in data:
            return Op(sql, rows)
        key = (columns, physical)
        json_sql = self._json_sql.get(key)
        if json_sql is None:
            values = ", ".join(f"value ->> {i}" for i in range(len(columns.split(","))))
            json_sql = self._json_sql[key] = (
                f"INSERT INTO {physical} ({columns}) SELECT {values} FROM json_each(?)"
            )
        return Op(json_sql, rows, data=data)

    def _sql(self, sql: str, names: dict[str, str]) -> str:
        key = (sql, names[self._plans[sql].table])
        physical = self._physical.get(key)
        if physical is None:
            physical = self._physical[key] = sql.format(**names)
        return physical

    def run(self, tx: Tx, names: dict[str, str], statements: list[Statement]) -> None:
        """Run ``statements`` on the physical tables ``names`` (logical -> physical)."""
        self.execute(tx, self.plan(names, statements))


def _plain(row: tuple[Any, ...]) -> bool:
    return all(type(value) in _PLAIN_VALUES for value in row)
