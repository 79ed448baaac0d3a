"""The rows of an import CSV file, each with the line it starts on: the header checked first, and
every way a record can be malformed turned into an error of its row, never a traceback and never
a row silently read into another.

The one quoting mistake that loses data is a quote that is opened and never closed: CSV then reads
every following line into that value, up to the next quote. So a value may span at most
:data:`MAX_VALUE_LINES` lines, and a record that is malformed after a line break inside quotes (or
one of whose inner lines would be a full row on its own) is reported at its line as an
unterminated quote, and the lines after the quote are read again as rows of their own.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import IO, Final, NamedTuple

from crm_es.app.csv_cells import cell_count, first_open_quote, record_cells
from crm_es.app.csv_encoding import CsvFile
from crm_es.app.csv_format import COLUMNS, REQUIRED
from crm_es.domain.errors import CrmError

# The longest text an imported column takes is 200 characters; a legitimate value with a line
# break (a name typed with Alt+Enter in Excel) spans a few lines, a swallowed file many.
MAX_VALUE_LINES: Final = 20

Row = dict[str, str | None]  # the header's column -> the cell stripped, None when blank


class CsvRowError(CrmError):
    """A record of the file that is not a row (its cells cannot be told apart)."""


class RecordBlock(NamedTuple):
    """Consecutive records of a file: its rows as columns, and the records that are no rows."""

    lines: list[int]  # the line each row starts on
    columns: dict[str, list[str]]  # the header's column -> each row's cell, stripped ("": blank)
    errors: list[tuple[int, CsvRowError]]  # (line, why) of the records that are not rows


def csv_rows(file: CsvFile, kind: str) -> Iterator[tuple[int, Row | CsvRowError]]:
    """(first line, row or why it is none) of each record of ``file`` after its header; a file
    whose header is wrong raises :class:`CrmError` before the first row."""
    with _reading(file) as f:
        yield from _Records(file, kind, f)


def csv_blocks(file: CsvFile, kind: str, size: int) -> Iterator[RecordBlock]:
    """The records of ``file`` after its header, as :func:`csv_rows` reads them (the same rows,
    lines and errors), in blocks of about ``size`` rows held as columns."""
    with _reading(file) as f:
        yield from _Records(file, kind, f).blocks(size)


@contextmanager
def _reading(file: CsvFile) -> Iterator[IO[str]]:
    try:
        with file.path.open(newline="", encoding=file.encoding) as f:
            yield f
    except UnicodeDecodeError:  # open_csv decoded it all: it was written to meanwhile
        raise CrmError(f"{file.path} changed while it was read; import it again") from None
    except OSError as e:
        raise CrmError(f"{file.path}: cannot be read: {e.strerror or e}") from None


class _Lines:
    """The file's lines for ``csv.reader``, keeping those of the record being read, and lines
    put back to be read again first. It ends a record after MAX_VALUE_LINES lines (``capped``),
    which the reader reports as a quote not closed."""

    __slots__ = ("_again", "_file", "capped", "record")

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self._again: list[str] = []  # a stack: the next line to read is the last
        self.record: list[str] = []
        self.capped = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        record = self.record
        if len(record) >= MAX_VALUE_LINES:
            self.capped = True
            raise StopIteration
        line = self._again.pop() if self._again else next(self._file)
        record.append(line)
        return line

    def read_again(self, lines: list[str]) -> None:
        self._again.extend(reversed(lines))

    @property
    def pending(self) -> bool:
        """Whether lines put back are still to be read."""
        return bool(self._again)

    def read(self, count: int) -> list[str]:
        """The next ``count`` lines of the file (fewer at its end), none put back pending."""
        return list(islice(self._file, count))


class _Records:
    def __init__(self, file: CsvFile, kind: str, f: IO[str]) -> None:
        self.file, self.kind = file, kind
        self.lines = _Lines(f)
        self.reader = csv.reader(self.lines, strict=True)
        self.names: list[str] = []
        self.line = 1  # the line the next record starts on

    def __iter__(self) -> Iterator[tuple[int, Row | CsvRowError]]:
        self.names = _header(self.file, self.kind, self._header_cells())
        names = self.names
        while (read := self._record()) is not None:
            for at, cells in read:
                if isinstance(cells, CsvRowError):
                    yield at, cells
                else:
                    yield at, dict(zip(names, [c.strip() or None for c in cells], strict=False))

    def blocks(self, size: int) -> Iterator[RecordBlock]:
        """The records after the header in blocks of about ``size`` lines. A run of lines with no
        quote (and no NUL, and none longer than a value may be) is one record per line, so it
        goes to ``csv.reader`` in one call; a block with a quote is read record by record, as
        :meth:`__iter__` reads, and the lines it had taken but did not need are read again."""
        self.names = _header(self.file, self.kind, self._header_cells())
        check_nul, limit = self.file.has_nul, csv.field_size_limit()
        while True:
            if self.lines.pending:  # left over by a block read record by record
                yield self._slow_block()
                continue
            lines = self.lines.read(size)
            if not lines:
                return
            text = "".join(lines)
            if '"' in text or (check_nul and "\x00" in text) or max(map(len, lines)) > limit:
                self.lines.read_again(lines)
                yield self._slow_block()
                continue
            first = self.line
            self.line += len(lines)
            records = list(csv.reader(lines, strict=True))  # one per line: no quotes
            yield self._block(range(first, first + len(records)), records, [])

    def _slow_block(self) -> RecordBlock:
        """Records read one by one until the lines put back to be read again are used up."""
        lines: list[int] = []
        records: list[list[str]] = []
        errors: list[tuple[int, CsvRowError]] = []
        while self.lines.pending and (read := self._record()) is not None:
            for at, cells in read:
                if isinstance(cells, CsvRowError):
                    errors.append((at, cells))
                else:
                    lines.append(at)
                    records.append(cells)
        return self._block(lines, records, errors)

    def _block(
        self,
        lines: Sequence[int],
        records: list[list[str]],
        errors: list[tuple[int, CsvRowError]],
    ) -> RecordBlock:
        """Well-formed records as columns of stripped cells, cut or padded to the header's width
        (a short record's missing cells are blank, as :meth:`__iter__` leaves them out)."""
        width = len(self.names)
        if set(map(len, records)) - {width}:
            kept: list[int] = []
            rows: list[list[str]] = []
            for at, cells in zip(lines, records, strict=True):
                if not cells:
                    continue  # a blank line
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    errors.append((at, self._too_many(len(cells))))
                    continue
                kept.append(at)
                rows.append(cells[:width] + [""] * (width - len(cells)))
            lines, records = kept, rows
        columns = [list(map(str.strip, column)) for column in zip(*records, strict=True)]
        if not columns:
            columns = [[] for _ in self.names]
        errors.sort(key=lambda error: error[0])
        return RecordBlock(list(lines), dict(zip(self.names, columns, strict=True)), errors)

    def _record(self) -> list[tuple[int, list[str] | CsvRowError]] | None:
        """The next record (None at the end of the file): its line and cells, or the error of
        a record that is not a row; no item for a blank line, several where an unterminated
        quote's lines are put back."""
        record, reader = self.lines.record, self.reader
        record.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except csv.Error as e:
            return list(self._malformed(e))
        at = self.line
        if len(record) == 1:
            self.line += 1
        else:
            swallowed = self._swallowed()
            if swallowed is not None:
                return [swallowed]
            self.line += len(record)
        if not cells:
            return []  # a blank line, as csv.DictReader skips it
        if len(cells) > len(self.names) and any(c.strip() for c in cells[len(self.names) :]):
            return [(at, self._too_many(len(cells)))]
        if self.file.has_nul and any("\x00" in c for c in cells):
            return [(at, self._nul(cells))]
        return [(at, cells)]

    def _too_many(self, cells: int) -> CsvRowError:
        return CsvRowError(
            f"{cells} cells, but the header names {len(self.names)} columns; quote a value that "
            'holds a comma ("a,b")'
        )

    def _nul(self, cells: list[str]) -> CsvRowError:
        column = next(i for i, c in enumerate(cells) if "\x00" in c)
        return CsvRowError(
            f"{self._column(column)}: a NUL character (\\x00), which no value may hold"
        )

    def _header_cells(self) -> list[str]:
        path = self.file.path
        open_quote = CrmError(f"{path} line 1: the header opens a quote it does not close")
        try:
            cells = next(self.reader)
        except StopIteration:
            raise CrmError(
                f"{path} is empty: its first line must be the header, e.g. "
                + ",".join(COLUMNS[self.kind][:4])
            ) from None
        except csv.Error as e:
            if first_open_quote(self.lines.record) is not None:
                raise open_quote from None
            raise CrmError(f"{path} line 1: the header is not valid CSV ({e})") from None
        if len(self.lines.record) > 1:
            raise open_quote
        self.line = 2
        return cells

    def _column(self, index: int) -> str:
        if index < len(self.names):
            return f"column {index + 1} ({self.names[index]})"
        return f"column {index + 1}"

    def _swallowed(self) -> tuple[int, CsvRowError] | None:
        """A record that spans lines without a CSV error: if a line between its quote's line and
        its last would be a full row on its own, the lines were swallowed by a quote left open
        (which a later quote happened to close); else the value holds a line break, kept."""
        raw = self.lines.record
        opened = first_open_quote(raw)
        if opened is None:
            return None
        line, column = opened
        if not any(cell_count(text) == len(self.names) for text in raw[line + 1 : -1]):
            return None
        return self._unterminated(line, column, "")

    def _malformed(self, error: csv.Error) -> Iterator[tuple[int, CsvRowError]]:
        raw, capped = self.lines.record, self.lines.capped
        self.lines.capped = False
        opened = first_open_quote(raw)
        if opened is not None:
            limit = f" (a value may span at most {MAX_VALUE_LINES} lines)" if capped else ""
            yield self._unterminated(*opened, limit)
            return
        at = self.line
        self.line += len(raw)
        text = "".join(raw)
        for cell in record_cells(text):
            if cell.end - cell.start > csv.field_size_limit():
                yield (
                    at,
                    CsvRowError(
                        f"{self._column(cell.column)}: a value of {cell.end - cell.start:,} "
                        f"characters, more than the {csv.field_size_limit():,} a value may hold"
                    ),
                )
                return
            if cell.trailing:
                yield (
                    at,
                    CsvRowError(
                        f"{self._column(cell.column)}: text after the quote that closes the value; "
                        'a quoted value ends at a comma or the line\'s end ("a" ,), and a quote '
                        'that is part of a value is written as two quotes ("say ""hi""")'
                    ),
                )
                return
        yield at, CsvRowError(f"not valid CSV ({error})")

    def _unterminated(self, line: int, column: int, limit: str) -> tuple[int, CsvRowError]:
        """The record's line ``line`` opens a quote in ``column`` that swallowed the lines after
        it: an error of the row it starts, and those lines are read again as rows."""
        raw = self.lines.record
        at, opened_on = self.line, self.line + line
        after = raw[line + 1 :]
        self.lines.read_again(after)
        self.line = opened_on + 1
        fix = 'Close the quote, or write a quote that is part of a value as two quotes ("")'
        if not after:
            return at, CsvRowError(
                f"{self._column(column)}: the quote that opens its value is never closed (the "
                f"file ends first). {fix}"
            )
        return at, CsvRowError(
            f"{self._column(column)}: the quote that opens its value (line {opened_on}) is not "
            f"closed on that line{limit}, so the next {len(after)} line(s) would be read into "
            f"the value; they are read as rows of their own instead. {fix}"
        )


def _header(file: CsvFile, kind: str, cells: list[str]) -> list[str]:
    """The header's column names, checked: known, each once, the required ones present. Blank
    names at its end are dropped (Excel writes them for columns once used); their cells must
    then be blank too."""
    columns = COLUMNS[kind]
    names = [c.strip().lstrip("\ufeff").strip() for c in cells]
    while names and not names[-1]:
        names.pop()
    if any("\x00" in n for n in names):
        raise CrmError(
            f"{file.path} line 1 holds NUL characters (\\x00): not a CSV file in "
            f"{file.encoding}; if it is UTF-16, give --encoding utf-16"
        )
    if not names:
        raise CrmError(
            f"{file.path} line 1 is blank: the first line must be the header, e.g. "
            + ",".join(columns[:4])
        )
    problems = []
    missing = [c for c in REQUIRED[kind] if c not in names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    for i, name in enumerate(names):
        where = f"column {i + 1}"
        if not name:
            problems.append(f"{where} has no name")
        elif name not in columns:
            close = difflib.get_close_matches(name.lower(), columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown column {name[:60]!r}{hint}")
        elif names.index(name) < i:
            problems.append(f"{where}: {name!r} again (also column {names.index(name) + 1})")
    if problems:
        required = ", ".join(REQUIRED[kind])
        raise CrmError(
            f"{file.path} line 1: " + "; ".join(problems) + f". Valid columns: "
            f"{', '.join(columns)} ({required} required)"
        )
    return names
