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
from collections.abc import Iterator
from typing import IO, Final, NamedTuple

from crm_es.app.csv_encoding import CsvFile
from crm_es.app.csv_format import COLUMNS, REQUIRED
from crm_es.domain.errors import CrmError

# The longest text an imported column takes is 200 characters; a legitimate value with a line
# break (a name typed with Alt+Enter in Excel) spans a few lines, a swallowed file many.
MAX_VALUE_LINES: Final = 20

Row = dict[str, str | None]  # the header's column -> the cell stripped, None when blank


class CsvRowError(CrmError):
    """A record of the file that is not a row (its cells cannot be told apart)."""


def csv_rows(file: CsvFile, kind: str) -> Iterator[tuple[int, Row | CsvRowError]]:
    """(first line, row or why it is none) of each record of ``file`` after its header; a file
    whose header is wrong raises :class:`CrmError` before the first row."""
    try:
        with file.path.open(newline="", encoding=file.encoding) as f:
            yield from _Records(file, kind, f)
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


class _Records:
    def __init__(self, file: CsvFile, kind: str, f: IO[str]) -> None:
        self.file, self.kind = file, kind
        self.lines = _Lines(f)
        self.reader = csv.reader(self.lines, strict=True)
        self.names: list[str] = []
        self.line = 1  # the line the next record starts on

    def __iter__(self) -> Iterator[tuple[int, Row | CsvRowError]]:
        self.names = _header(self.file, self.kind, self._header_cells())
        width, names, check_nul = len(self.names), self.names, self.file.has_nul
        record, reader = self.lines.record, self.reader
        while True:
            record.clear()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield from self._malformed(e)
                continue
            at = self.line
            if len(record) == 1:
                self.line += 1
            else:
                swallowed = self._swallowed()
                if swallowed is not None:
                    yield swallowed
                    continue
                self.line += len(record)
            if not cells:
                continue  # a blank line, as csv.DictReader skips it
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                yield at, self._too_many(len(cells))
            elif check_nul and any("\x00" in c for c in cells):
                yield at, self._nul(cells)
            else:
                yield at, dict(zip(names, [c.strip() or None for c in cells], strict=False))

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
            if _first_open_quote(self.lines.record) is not None:
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
        opened = _first_open_quote(raw)
        if opened is None:
            return None
        line, column = opened
        if not any(_cell_count(text) == len(self.names) for text in raw[line + 1 : -1]):
            return None
        return self._unterminated(line, column, "")

    def _malformed(self, error: csv.Error) -> Iterator[tuple[int, CsvRowError]]:
        raw, capped = self.lines.record, self.lines.capped
        self.lines.capped = False
        opened = _first_open_quote(raw)
        if opened is not None:
            limit = f" (a value may span at most {MAX_VALUE_LINES} lines)" if capped else ""
            yield self._unterminated(*opened, limit)
            return
        at = self.line
        self.line += len(raw)
        text = "".join(raw)
        for cell in _cells(text):
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


class _Cell(NamedTuple):
    column: int
    start: int  # where its text starts in the record (after its opening quote)
    end: int
    quoted: bool
    closed: bool  # a quoted value's closing quote was found
    trailing: bool  # text follows the closing quote before the comma
    line_break: bool  # a line break inside its quotes


def _cells(text: str) -> Iterator[_Cell]:
    """The cells of the first record of ``text`` as RFC 4180 reads them, for telling where a
    malformed record goes wrong (only on that path: csv.reader reads every record)."""
    i, n, column = 0, len(text), 0
    while True:
        if i < n and text[i] == '"':
            start, closed, line_break = i + 1, False, False
            i += 1
            while i < n:
                if text[i] == '"':
                    if text[i + 1 : i + 2] == '"':
                        i += 2
                        continue
                    closed = True
                    break
                line_break = line_break or text[i] in "\r\n"
                i += 1
            end = i
            i += 1 if closed else 0
            j = i
            while j < n and text[j] not in ",\r\n":
                j += 1
            yield _Cell(column, start, end, True, closed, j > i, line_break)
            i = j
        else:
            j = i
            while j < n and text[j] not in ",\r\n":
                j += 1
            yield _Cell(column, i, j, False, True, False, False)
            i = j
        if i < n and text[i] == ",":
            i += 1
            column += 1
            continue
        return


def _first_open_quote(raw: list[str]) -> tuple[int, int] | None:
    """(line of ``raw``, column) where the first quoted value with a line break in it (or not
    closed at all) opens."""
    text = "".join(raw)
    for cell in _cells(text):
        if cell.quoted and (cell.line_break or not cell.closed):
            quote, offset, line = cell.start - 1, 0, 0
            while line + 1 < len(raw) and offset + len(raw[line]) <= quote:
                offset += len(raw[line])
                line += 1
            return line, cell.column
    return None


def _cell_count(line: str) -> int:
    try:
        return len(next(csv.reader([line]), []))
    except csv.Error:
        return 0
