"""Text for people on the HTML page: local times, changes, money and "no data yet" notes.

Times are shown in the store's time zone, to the minute, with the zone's name
(``2026-12-07 18:30 (Asia/Shanghai)``), inside a ``<time>`` element whose ``datetime`` keeps the
exact instant for programs. A bare date given as ``--as-of`` means the end of that day, and is
shown so (``2026-03-31, end of day (Asia/Shanghai)``) rather than as 23:59.
"""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from crm_es.domain.times import iso


def html_text(value: object) -> str:
    """``value`` as text safe inside an HTML element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def local_time(moment: datetime, tz: tzinfo, zone: str) -> str:
    """``moment`` in the store's time zone, for people."""
    local = moment.astimezone(tz)
    if (local + timedelta(microseconds=1)).astimezone(tz).date() != local.date():
        return f"{local.date().isoformat()}, end of day ({zone})"
    return f"{local:%Y-%m-%d %H:%M} ({zone})"


def time_html(moment: datetime, tz: tzinfo, zone: str) -> str:
    """A ``<time>`` element: the local time for people, the exact instant for programs."""
    text = html_text(local_time(moment, tz, zone))
    return f'<time datetime="{html_text(iso(moment))}">{text}</time>'


def day_span(first: str, last: str) -> str:
    """``2026-11-01 – 2026-11-08``, or one day."""
    return first if first == last else f"{first} – {last}"


def days_ago(day: date | str | None, today: date) -> str:
    """``2026-10-26 (43 days ago)``, ``today``, or ``never``."""
    if day is None:
        return "never"
    day = date.fromisoformat(day) if isinstance(day, str) else day
    n = (today - day).days
    if n == 0:
        return f"{day.isoformat()} (today)"
    return f"{day.isoformat()} ({n:,} day{'s' if n != 1 else ''} ago)"


def change(now: Decimal | int, before: Decimal | int | None) -> tuple[str, str]:
    """The change from ``before`` to ``now`` in words and its CSS class (up, down, flat)."""
    if before is None:
        return "–", "flat"
    if before == 0:
        return ("no change", "flat") if now == 0 else ("new (none before)", "up")
    pct = (Decimal(now) - Decimal(before)) / abs(Decimal(before)) * 100
    if round(pct, 1) == 0:
        return "±0.0%", "flat"
    return (f"▲ {pct:,.1f}%", "up") if pct > 0 else (f"▼ {-pct:,.1f}%", "down")


def money(amount: str | Decimal, digits: int | None = None) -> str:
    """A decimal amount with thousands separators (``digits`` decimals, or as given)."""
    value = Decimal(amount)
    if digits is None:
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def no_data(text: str) -> str:
    """A "no data yet" note that stands where a chart or table would be."""
    return f'<p class="no-data">{html_text(text)}</p>'
