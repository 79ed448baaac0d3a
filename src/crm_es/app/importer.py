"""CSV import of customers and purchases, keyed by natural keys so re-running a file adds nothing.

Customers are matched by ``external_ref``. A purchase row without ``order_id`` gets one derived
from its content (customer, time, amount, currency, and how many identical rows came before it in
the file), so a re-run maps each row to the same order and is recognised as already stored.
Rows are validated with the same msgspec schemas as every other command; a bad row is reported
with its file line number and stores nothing, while the good rows are stored in batches.
The file's text encoding is settled first (:mod:`.csv_encoding`), and its CSV read record by
record with malformed ones as errors of their rows (:mod:`.csv_rows`).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import msgspec

from crm_es.app.csv_encoding import AUTO, CsvFile, open_csv
from crm_es.app.csv_format import (
    CUSTOMER_COLUMNS,
    IMPORT_CHUNK_ROWS,
    PURCHASE_COLUMNS,
    REQUIRED,
)
from crm_es.app.csv_rows import CsvRowError, csv_rows
from crm_es.app.results import CommandResult
from crm_es.app.service import CRM, utc_now
from crm_es.domain import commands as cmd
from crm_es.domain.decide.decisions import Envelope
from crm_es.domain.errors import (
    CrmError,
    CustomerAlreadyRegistered,
    CustomerNotFound,
    DuplicateId,
    IdempotencyConflict,
    InvalidValue,
)
from crm_es.domain.times import moment
from crm_es.domain.values import Money


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


def parse_time(text: str, field: str = "occurred_at", tz: tzinfo = UTC) -> datetime:
    """A CSV time: an ISO date-time, or a bare date meaning the end of that day in the store's
    time zone ``tz``, as everywhere (see :mod:`crm_es.domain.times`) — except today, whose end
    is still to come: a bare date of today means now."""
    parsed = moment(field, text, tz=tz)
    assert parsed is not None
    now = utc_now()
    if len(text.strip()) in (8, 10) and parsed > now >= parsed - timedelta(days=1):
        return now
    return parsed


def _customer_command(row: dict[str, Any], tz: tzinfo) -> cmd.Command:
    if row.get("external_ref") is None:
        raise InvalidValue("external_ref", "", "required: customers are matched by it")
    fields = {k: v for k, v in row.items() if v is not None and k in CUSTOMER_COLUMNS}
    if "tags" in fields:
        fields["tags"] = [t.strip() for t in fields["tags"].split(";") if t.strip()]
    if "occurred_at" in fields:
        fields["occurred_at"] = parse_time(fields["occurred_at"], tz=tz)
    fields["command_id"] = f"csv:customer:{fields.get('external_ref')}"
    return cmd.command_from_fields(cmd.RegisterCustomer, fields)


def _purchase_command(row: dict[str, Any], seen: Counter[str], tz: tzinfo) -> cmd.Command:
    fields = {k: v for k, v in row.items() if v is not None and k in PURCHASE_COLUMNS}
    customer = fields.pop("customer_ref", None)
    at = fields.get("occurred_at")
    fields["occurred_at"] = parse_time(at, tz=tz) if at is not None else None
    if fields.get("order_id") is None:
        key = "|".join(str(row.get(c) or "") for c in PURCHASE_COLUMNS)
        seen[key] += 1
        digest = hashlib.sha256(f"{key}|{seen[key]}".encode()).hexdigest()[:24]
        fields["order_id"] = f"row-{digest}"
    fields["command_id"] = f"csv:purchase:{customer}:{fields['order_id']}"
    # Checked here, before anything runs, so that with --register-missing a row whose purchase
    # would be rejected does not register its customer either: a bad row stores nothing.
    Money.parse(fields.get("amount", ""), fields.get("currency", ""))
    if fields["occurred_at"] is not None:
        Envelope.for_command(cmd.Command(occurred_at=fields["occurred_at"]), utc_now(), "check")
    return cmd.command_from_fields(cmd.RecordPurchase, {"customer": customer, **fields})


def _required(row: dict[str, Any], kind: str) -> None:
    """A required column left blank in a row is an error of that row, not "now" or nothing."""
    for column in REQUIRED[kind]:
        if row.get(column) is None:
            raise InvalidValue(column, "", "required: this column may not be blank")


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

    def commands() -> Iterator[cmd.Command]:
        for line, row in csv_rows(file, kind):
            report.rows += 1
            if isinstance(row, CsvRowError):
                rejected(line, row)
                continue
            try:
                _required(row, kind)
                built = _row_commands(kind, row, seen, register_missing, tz)
            except (msgspec.ValidationError, ValueError, CrmError) as e:
                rejected(line, e)
                continue
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


def _row_commands(
    kind: str, row: dict[str, Any], seen: Counter[str], register_missing: bool, tz: tzinfo
) -> list[tuple[cmd.Command, bool]]:
    """The commands of one row, each with whether it is an automatic registration."""
    if kind == "customers":
        return [(_customer_command(row, tz), False)]
    command = _purchase_command(row, seen, tz)
    if not register_missing:
        return [(command, False)]
    ref = row.get("customer_ref") or ""
    registration = cmd.RegisterCustomer(
        external_ref=ref,
        occurred_at=command.occurred_at,
        command_id=f"csv:customer:{ref}",
    )
    return [(cmd.validate_command(registration), True), (command, False)]


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
