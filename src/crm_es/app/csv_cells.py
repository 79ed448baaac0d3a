"""How the text of a CSV record splits into cells, as RFC 4180 reads it: for telling where a
malformed record goes wrong (an unterminated quote, text after a closing quote, an oversized
value) and which line of it opened a quote. Only that path uses it: ``csv.reader`` reads every
well-formed record (see :mod:`crm_es.app.csv_rows`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import NamedTuple


class Cell(NamedTuple):
    column: int
    start: int  # where its text starts in the record (after its opening quote)
    end: int
    quoted: bool
    closed: bool  # a quoted value's closing quote was found
    trailing: bool  # text follows the closing quote before the comma
    line_break: bool  # a line break inside its quotes


def record_cells(text: str) -> Iterator[Cell]:
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
            yield Cell(column, start, end, True, closed, j > i, line_break)
            i = j
        else:
            j = i
            while j < n and text[j] not in ",\r\n":
                j += 1
            yield Cell(column, i, j, False, True, False, False)
            i = j
        if i < n and text[i] == ",":
            i += 1
            column += 1
            continue
        return


def first_open_quote(raw: list[str]) -> tuple[int, int] | None:
    """(line of ``raw``, column) where the first quoted value with a line break in it (or not
    closed at all) opens."""
    text = "".join(raw)
    for cell in record_cells(text):
        if cell.quoted and (cell.line_break or not cell.closed):
            quote, offset, line = cell.start - 1, 0, 0
            while line + 1 < len(raw) and offset + len(raw[line]) <= quote:
                offset += len(raw[line])
                line += 1
            return line, cell.column
    return None


def cell_count(line: str) -> int:
    try:
        return len(next(csv.reader([line]), []))
    except csv.Error:
        return 0
