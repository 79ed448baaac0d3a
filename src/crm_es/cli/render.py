"""Output formats shared by every command that returns rows: table, JSON, CSV.

The table form pads by display width (a Chinese character takes two terminal columns).
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Any, Final

import click
import msgspec

FORMATS: Final = ("table", "json", "csv")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format: a table for people, JSON for programs, CSV for spreadsheets. "
    "[default: table on a terminal, JSON otherwise]",
)


def resolved_format(fmt: str | None) -> str:
    """The format asked for, or a table when a person is reading and JSON when a program is."""
    if fmt is not None:
        return fmt
    return "table" if sys.stdout.isatty() else "json"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return (
            f"{value:.4g}"
            if abs(value) < 1e-3 and value
            else f"{value:.2f}".rstrip("0").rstrip(".")
        )
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal columns, with an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def format_table(
    rows: list[dict[str, Any]],
    max_width: int = 40,
    columns: list[str] | None = None,
    fit: int | None = None,
) -> str:
    """Rows as an aligned text table (cells cut at ``max_width`` terminal columns). With
    ``fit``, the last columns that do not fit in that many terminal columns are left out, and a
    note says how many."""
    if not rows:
        return "(no rows)\n"
    columns = columns if columns is not None else list(rows[0])
    cells = [[clip(_text(row.get(c)), max_width) for c in columns] for row in rows]
    widths = [
        max(display_width(c), *(display_width(r[i]) for r in cells)) for i, c in enumerate(columns)
    ]
    shown = len(columns)
    if fit is not None:
        while shown > 1 and sum(widths[:shown]) + 2 * (shown - 1) > fit:
            shown -= 1

    def line(values: list[str]) -> str:
        return "  ".join(
            v + " " * (w - display_width(v))
            for v, w in zip(values[:shown], widths[:shown], strict=True)
        )

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    text = "\n".join(s.rstrip() for s in out) + "\n"
    if shown < len(columns):
        text += f"({len(columns) - shown} more columns not shown for width: --columns all)\n"
    return text


def format_mapping(data: dict[str, Any], indent: int = 0) -> str:
    """A nested object as indented ``key: value`` lines for people (``crm-es show``): empty
    values left out, lists of objects as small tables."""
    pad = "  " * indent
    out: list[str] = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            out.append(f"{pad}{key}:\n{format_mapping(value, indent + 1)}")
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            table = format_table(value, columns=list(value[0]))
            out.append(f"{pad}{key}:\n" + "".join(f"{pad}  {t}\n" for t in table.splitlines()))
        elif isinstance(value, list):
            out.append(f"{pad}{key}: {', '.join(_text(v) for v in value)}\n")
        else:
            out.append(f"{pad}{key}: {_text(value)}\n")
    return "".join(out)


def emit(data: Any, rows: list[dict[str, Any]], fmt: str | None) -> None:
    """Write ``data`` as JSON, or its flat ``rows`` as a table or CSV, to stdout."""
    from crm_es.reports.api import to_csv

    fmt = resolved_format(fmt)
    if fmt == "json":
        sys.stdout.buffer.write(msgspec.json.encode(data) + b"\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(rows))
    else:
        sys.stdout.write(format_table(rows))
    sys.stdout.flush()
