"""An empty store's HTML page says so in words, in every section, on both stores; its header
shows the query's times for people in the store's time zone; it has no chart to draw and no
font to embed, and the same query gives the same bytes."""

from __future__ import annotations

import re

from crm_es import CRM
from crm_es.reports.api import Reports
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery

SECTIONS = ("monthly", "at-risk", "overdue-tasks", "segments", "rfm-grid", "satisfaction",
            "complaints", "churn", "retention", "value", "pipeline", "goals", "points", "care",
            "kpi")  # fmt: skip


def page_of(crm: CRM, as_of: str, known_at: str) -> str:
    with Reports(crm) as reports:
        return render_html(reports, ReportQuery.at(as_of, known_at, tz=crm.store.timezone))


def test_an_empty_store_says_there_is_no_data_yet_in_every_section(crm: CRM) -> None:
    page = page_of(crm, "2026-03-31", "2026-04-01T08:30:00Z")
    assert "This store has no customers yet as of 2026-03-31" in page
    for section_id in SECTIONS:
        start = page.index(f'<section id="{section_id}">')
        part = page[start : page.index("</section>", start)]
        assert re.search(r'<p class="no-data">No [^<]* as of 2026-03-31[.:]', part), section_id
    assert "<figure" not in page and "<svg" not in page  # no empty chart frames
    assert '<div class="value">0</div><div class="label">Customers</div>' in page
    assert "@font-face" not in page  # no Chinese character to draw
    assert page == page_of(crm, "2026-03-31", "2026-04-01T08:30:00Z")


def test_the_header_shows_local_times_for_people(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.store.set_timezone("Asia/Shanghai")
        page = page_of(crm, "2026-03-31", "2026-04-01T08:30:00Z")
    # A bare date is the end of that day in the store's zone; the instant stays for programs.
    assert (
        '<dd id="meta-as-of"><time datetime="2026-03-31T15:59:59.999999Z">'
        "2026-03-31, end of day (Asia/Shanghai)</time></dd>"
    ) in page
    assert (
        '<dd id="meta-known-at"><time datetime="2026-04-01T08:30:00.000000Z">'
        "2026-04-01 16:30 (Asia/Shanghai)</time></dd>"
    ) in page
    assert '<dd id="meta-time-zone">Asia/Shanghai</dd>' in page
    assert "T15:59:59" not in page.replace('datetime="2026-03-31T15:59:59.999999Z"', "")
