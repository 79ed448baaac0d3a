"""CSV import of customers and purchases, keyed by natural keys so re-running a file adds nothing.

Customers are matched by ``external_ref``. A purchase row without ``order_id`` gets one derived
from its content (customer, time, amount, currency, and how many identical rows came before it in
the file), so a re-run maps each row to the same order and is recognised as already stored.
Rows are validated with the same msgspec schemas as every other command; a bad row is reported
with its file line number and stores nothing, while the good rows are stored in batches.
The file's text encoding is settled first (:mod:`.csv_encoding`), and its CSV read with
malformed records as errors of their rows (:mod:`.csv_rows`). The rows are read in blocks held
as columns and checked column by column (:mod:`.csv_columns`); a row that needs more than that,
or is refused, takes the command path, row by row (:mod:`.csv_commands`), which decides its
command or its error. ``columnar=False`` sends every row that way (the differential tests
compare the two).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

from crm_es.app.csv_columns import Built, CustomerFileColumns, PurchaseFileColumns
from crm_es.app.csv_commands import row_commands
from crm_es.app.csv_encoding import AUTO, CsvFile, open_csv
from crm_es.app.csv_format import IMPORT_CHUNK_ROWS
from crm_es.app.csv_rows import CsvRowError, RecordBlock, csv_blocks, csv_rows
from crm_es.app.results import CommandResult
from crm_es.app.service import CRM
from crm_es.domain import commands as cmd
from crm_es.domain.errors import (
    CrmError,
    CustomerAlreadyRegistered,
    CustomerNotFound,
    DuplicateId,
    IdempotencyConflict,
)

__all__ = ["IMPORT_CHUNK_ROWS", "CsvImportReport", "RowError", "count_rows", "import_csv"]

# Rows read and checked together as columns: enough to spread the per-block work thin, few
# enough that a block with a quote in it (read record by record) costs little.
BLOCK_ROWS: Final = 2048


class RowError(msgspec.Struct, frozen=True):
    line: int
    error: str


class CsvImportReport(msgspec.Struct):
    file: str
    kind: str
    encoding: str = "utf-8"  # the codec the file was read with (detected or given)
    rows: int = 0
    stored: int = 0  # rows that appended events
    unchanged: int = 0  # rows already in the store (a re-run)
    rejected: int = 0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    errors: list[RowError] = []


def count_rows(source: Path | CsvFile) -> int:
    """About how many rows (lines after the header), for a progress bar."""
    file = source if isinstance(source, CsvFile) else open_csv(source)
    return max(file.lines - 1, 0)


def import_csv(
    app: CRM,
    source: Path | CsvFile,
    kind: str,
    *,
    encoding: str = AUTO,
    register_missing: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = IMPORT_CHUNK_ROWS,
    columnar: bool = True,
    block_rows: int = BLOCK_ROWS,
) -> CsvImportReport:
    """Import ``kind`` ("customers" or "purchases") rows from ``source``, a path read in
    ``encoding`` (see :func:`open_csv`) or a file already opened with it; see the module doc.
    A file that cannot be decoded or whose header is wrong raises CrmError, storing nothing."""
    file = source if isinstance(source, CsvFile) else open_csv(source, encoding)
    encoding_name = file.encoding.removesuffix("-sig")  # utf-8-sig: UTF-8, BOM or not
    report = CsvImportReport(file=str(file.path), kind=kind, encoding=encoding_name)
    tz = app.store.timezone
    started = time.monotonic()
    seen: Counter[str] = Counter()
    # (line, is_auto_registration) of each command handed to execute_many, in order: its
    # outcomes come back in the same order. The commands stream through (no batch is held
    # here), so reading and parsing the file overlaps with the store's work.
    pending: deque[tuple[int, bool]] = deque()

    def rejected(line: int, error: Exception) -> None:
        report.rejected += 1
        report.errors.append(RowError(line, str(error)))
        if progress is not None:
            progress(1)

    def row_path(line: int, row: dict[str, Any]) -> list[tuple[cmd.Command, bool]]:
        try:
            return row_commands(kind, row, seen, register_missing, tz)
        except (msgspec.ValidationError, ValueError, CrmError) as e:
            rejected(line, e)
            return []

    def by_rows() -> Iterator[tuple[int, list[tuple[cmd.Command, bool]]]]:
        for line, row in csv_rows(file, kind):
            report.rows += 1
            if isinstance(row, CsvRowError):
                rejected(line, row)
            else:
                yield line, row_path(line, row)

    def by_columns() -> Iterator[tuple[int, list[tuple[cmd.Command, bool]]]]:
        columns: PurchaseFileColumns | CustomerFileColumns | None = None
        for block in csv_blocks(file, kind, block_rows):
            report.rows += len(block.lines) + len(block.errors)
            for line, error in block.errors:
                rejected(line, error)
            if columns is None:
                names = list(block.columns)
                columns = (
                    CustomerFileColumns(names, tz)
                    if kind == "customers"
                    else PurchaseFileColumns(names, tz, seen, register_missing)
                )
            built: list[Built] = columns.commands(block)
            for i, line in enumerate(block.lines):
                commands = built[i]
                yield line, commands if commands is not None else row_path(line, _row(block, i))

    def commands() -> Iterator[cmd.Command]:
        for line, built in by_columns() if columnar else by_rows():
            for command, auto in built:
                pending.append((line, auto))
                yield command

    for outcome in app.execute_many(commands(), chunk_size=chunk_size, validated=True):
        line, auto = pending.popleft()
        if auto:  # registering an unknown customer before its purchase, if still unknown
            # An earlier row registered it already: refused as registered, or (its id carries
            # the earlier row's time) as the same command_id with another payload.
            if isinstance(outcome, Exception) and not isinstance(
                outcome, CustomerAlreadyRegistered | IdempotencyConflict
            ):
                report.errors.append(RowError(line, str(outcome)))
            continue
        _count(report, line, outcome)
        if progress is not None:
            progress(1)
    report.errors.sort(key=lambda e: e.line)
    report.seconds = round(time.monotonic() - started, 3)
    report.rows_per_second = round(report.rows / report.seconds, 1) if report.seconds else 0.0
    return report


def _row(block: RecordBlock, i: int) -> dict[str, Any]:
    """Row ``i`` of ``block`` as the command path takes it (a blank cell is None)."""
    return {name: values[i] or None for name, values in block.columns.items()}


def _count(report: CsvImportReport, line: int, outcome: object) -> None:
    if isinstance(outcome, DuplicateId | CustomerAlreadyRegistered) or (
        isinstance(outcome, CommandResult) and outcome.duplicate
    ):
        report.unchanged += 1
    elif isinstance(outcome, CustomerNotFound):
        report.rejected += 1
        report.errors.append(RowError(line, f"{outcome} (use --register-missing to register it)"))
    elif isinstance(outcome, CrmError | msgspec.ValidationError):
        report.rejected += 1
        report.errors.append(RowError(line, str(outcome)))
    else:
        report.stored += 1
