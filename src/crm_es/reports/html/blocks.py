"""The building blocks of the page's sections: a section, a chart figure, a table.

A figure says how many values its chart plots (``data-points``), so a reader of the HTML — and
the browser test — can tell a chart with data from an empty frame; a section without data
shows a "no data yet" note (:func:`crm_es.reports.html.people.no_data`) instead of a chart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from crm_es.reports.html.people import html_text


def month_range(months: Iterable[str]) -> list[str]:
    """Every month from the first to the last of ``months`` (``YYYY-MM``), gaps filled."""
    present = sorted(set(months))
    if not present:
        return []
    year, month = int(present[0][:4]), int(present[0][5:7])
    out: list[str] = []
    while (label := f"{year:04d}-{month:02d}") <= present[-1]:
        out.append(label)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def format_number(value: float | int | None, digits: int = 1) -> str:
    """Thousands separators; ``digits`` decimals for a float; a dash for a missing figure."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


class Num(str):
    """A table cell already formatted as a number (right-aligned as is)."""


def table(
    caption: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    lang: str | None = None,
    css_class: str | None = None,
) -> str:
    """A small table; numeric cells (int, float, Decimal, None, :class:`Num`) are right-aligned
    and formatted with thousands separators."""

    def cell(tag: str, value: object) -> str:
        numeric = value is None or isinstance(value, int | float | Decimal | Num)
        if isinstance(value, str):
            text = str(value)
        elif isinstance(value, Decimal):
            text = f"{value:,}"
        elif isinstance(value, int | float) or value is None:
            text = format_number(value)
        else:
            text = str(value)
        cls = ' class="num"' if numeric else ""
        return f"<{tag}{cls}>{html_text(text)}</{tag}>"

    lang_attr = f' lang="{lang}"' if lang else ""
    lang_attr += f' class="{html_text(css_class)}"' if css_class else ""
    head = "".join(f"<th>{html_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>\n" for row in rows)
    return (
        f"<table{lang_attr}><caption>{html_text(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"
    )


def figure(chart_id: str, svg: str, caption: str, points: int) -> str:
    """A chart in its ``<figure>``; ``points``: how many values it plots."""
    return (
        f'<figure class="chart" id="{html_text(chart_id)}" data-chart="{html_text(chart_id)}" '
        f'data-points="{points}">\n{svg}\n'
        f"<figcaption hidden>{html_text(caption)}</figcaption></figure>"
    )


def section(section_id: str, title: str, note: str, *parts: str) -> str:
    body = "\n".join(parts)
    return (
        f'<section id="{html_text(section_id)}">\n<h2>{html_text(title)}</h2>\n'
        f'<p class="note">{html_text(note)}</p>\n{body}\n</section>'
    )


def share(part: int, whole: int) -> float | None:
    """``part`` as a percentage of ``whole`` (None when ``whole`` is 0)."""
    return None if whole == 0 else 100.0 * part / whole
