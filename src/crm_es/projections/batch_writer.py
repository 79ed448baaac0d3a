"""Running a batch's statements: table by table, each run of one SQL as one call.

Every statement names exactly one table and reads nothing, so statements on different tables
commute: a batch is split by table, keeping each table's statements in event order, and each run
of identical SQL within a table becomes one ``executemany``. On PostgreSQL a long run of plain
inserts (``INSERT INTO {t} (cols) VALUES (?, …)``, no conflict clause) becomes one ``COPY``, which
takes the same rows in one round trip; the rows, and so the tables, are the same either way.
"""

from __future__ import annotations

import re
from typing import Any, Final

from crm_es.app.database import Tx
from crm_es.projections.read_model import Statement

_TABLE = re.compile(r"\{(\w+)\}")
_PLAIN_INSERT = re.compile(r"INSERT INTO \{\w+\} \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)")
# Below this many rows a COPY's set-up costs more than executemany's pipelined inserts.
COPY_MIN_ROWS: Final = 64


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
        self.copy_columns = plain.group(1) if plain else None


class BatchWriter:
    def __init__(self) -> None:
        self._plans: dict[str, _Plan] = {}
        self._physical: dict[tuple[str, str], str] = {}

    def _plan(self, sql: str) -> _Plan:
        plan = self._plans.get(sql)
        if plan is None:
            plan = self._plans[sql] = _Plan(sql)
        return plan

    def run(self, tx: Tx, names: dict[str, str], statements: list[Statement]) -> None:
        """Run ``statements`` on the physical tables ``names`` (logical -> physical)."""
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
        for table, table_runs in runs.items():
            physical = names[table]
            for sql, rows in table_runs:
                columns = plans[sql].copy_columns
                if tx.postgres and columns is not None and len(rows) >= COPY_MIN_ROWS:
                    tx.copy_rows(physical, columns, rows)
                else:
                    tx.executemany(self._sql(sql, names), rows)

    def _sql(self, sql: str, names: dict[str, str]) -> str:
        key = (sql, names[self._plans[sql].table])
        physical = self._physical.get(key)
        if physical is None:
            physical = self._physical[key] = sql.format(**names)
        return physical
