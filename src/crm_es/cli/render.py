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
    default="json",
    show_default=True,
    help="Output format: a table for people, JSON for programs, CSV for spreadsheets.",
)


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


def format_table(rows: list[dict[str, Any]], max_width: int = 40) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0])
    cells = [[_text(row.get(c))[:max_width] for c in columns] for row in rows]
    widths = [
        max(display_width(c), *(display_width(r[i]) for r in cells)) for i, c in enumerate(columns)
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v + " " * (w - display_width(v)) for v, w in zip(values, widths, strict=True)
        )

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(s.rstrip() for s in out) + "\n"


def emit(data: Any, rows: list[dict[str, Any]], fmt: str) -> None:
    """Write ``data`` as JSON, or its flat ``rows`` as a table or CSV, to stdout."""
    from crm_es.reports.api import to_csv

    if fmt == "json":
        sys.stdout.buffer.write(msgspec.json.encode(data) + b"\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(rows))
    else:
        sys.stdout.write(format_table(rows))
    sys.stdout.flush()
