"""``crm-es report html``: every report in ONE self-contained HTML file, with charts.

    from crm_es import CRM
    from crm_es.reports.html.page import write_html_report
    from crm_es.reports.api import Reports

    with CRM() as crm, Reports(crm) as reports:
        write_html_report(reports, Path("crm-report.html"), as_of="2026-06-30")

The file works offline: charts are inline SVG drawn by matplotlib (an optional dependency: the
``reports`` extra), the style sheet is inline, Chinese text is drawn with the reader's CJK font
or an embedded subset of Noto Sans SC (:mod:`crm_es.reports.html.fonts`), and there are no
scripts, images or anything else to fetch. Every figure is computed for ONE (as_of, known_at)
pair, fixed before the first report runs, so the sections agree with each other, and the page
carries no generation time: the same pair gives the same bytes.

This module frames and writes the page: style sheet, header with the query's times in the
store's time zone, headline cards (the month's revenue, orders and new customers with their
change), footer. What it shows is gathered by :mod:`crm_es.reports.html.data` and drawn by
:mod:`crm_es.reports.html.business` (the month by month figures and the action lists, first)
and :mod:`crm_es.reports.html.sections` (one section per report).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Final

from crm_es.reports.api import Moment, Reports
from crm_es.reports.html.blocks import format_number
from crm_es.reports.html.business import compared_with, month_label, render_business
from crm_es.reports.html.data import PageData, collect
from crm_es.reports.html.fonts import CHART_FONT_STACK, TEXT_FONT_STACK, font_face_css
from crm_es.reports.html.people import change, html_text, money, no_data, time_html
from crm_es.reports.html.sections import render_sections
from crm_es.reports.query import ReportQuery
from crm_es.store.files import replaced

STYLE: Final = f"""
body {{ font-family: {TEXT_FONT_STACK}; margin: 0;
  color: #1d2733; background: #f4f6f8; line-height: 1.45; }}
figure.chart svg text {{ font-family: {CHART_FONT_STACK}; }}
main {{ max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }}
header {{ background: #1d3557; color: #fff; padding: 20px 28px; }}
header h1 {{ margin: 0 0 8px; font-size: 1.6rem; }}
header dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0;
  font-size: 0.9rem; }}
header dt {{ opacity: 0.75; }} header dd {{ margin: 0; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
  margin: 20px 0 8px; }}
.card {{ background: #fff; border-radius: 8px; padding: 12px 16px;
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }}
.card .value {{ font-size: 1.7rem; font-weight: 700; }}
.card .label {{ font-size: 0.85rem; color: #5a6675; }}
.card .delta {{ font-size: 0.8rem; }}
.delta.up {{ color: #2e7d32; }} .delta.down {{ color: #c62828; }} .delta.flat {{ color: #5a6675; }}
section {{ background: #fff; border-radius: 8px; padding: 8px 22px 18px; margin: 18px 0;
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }}
section h2 {{ font-size: 1.2rem; margin: 14px 0 4px; }}
section p.note {{ color: #5a6675; font-size: 0.88rem; margin: 0 0 8px; }}
p.no-data {{ background: #f4f6f8; border: 1px dashed #b8c2cc; border-radius: 6px;
  padding: 14px 16px; color: #3d4a59; margin: 10px 0; }}
figure.chart {{ margin: 10px 0; }}
figure.chart svg {{ display: block; height: auto; }}
.row {{ display: flex; flex-wrap: wrap; gap: 10px 28px; align-items: flex-start; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 6px 0; }}
th, td {{ padding: 3px 10px; border-bottom: 1px solid #e3e7eb; text-align: left; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.list td {{ white-space: nowrap; }} table.list td:first-child {{ white-space: normal; }}
caption {{ text-align: left; font-weight: 600; padding: 4px 0; }}
footer {{ color: #5a6675; font-size: 0.8rem; margin-top: 24px; }}
"""


def _cards(d: PageData) -> str:
    """The headline figures; the month's figures with their change against the month before."""
    o, seg, sat, churn, agenda = d.sat.overall, d.seg, d.sat, d.churn, d.agenda
    cards: list[tuple[str, str, str]] = [("Customers", format_number(len(seg.customers)), "")]
    if d.monthly.months:
        m = d.monthly.months[-1]
        versus = f" vs {compared_with(m)}"

        def delta(now: Decimal | int, before: Decimal | int | None) -> str:
            text, css = change(now, before)
            return f'<div class="delta {css}">{html_text(text + versus)}</div>'

        label = month_label(m)
        for currency in d.monthly.currencies[:2]:  # the main currencies; all are in the table
            now = Decimal(m.revenue[currency])
            before = Decimal(m.previous_revenue[currency]) if m.previous_revenue else None
            cards.append((f"Revenue {label} ({currency})", money(now, 0), delta(now, before)))
        cards.append(
            (f"Orders {label}", format_number(m.orders), delta(m.orders, m.previous_orders))
        )
        cards.append(
            (f"New customers {label}", format_number(m.new_customers),
             delta(m.new_customers, m.previous_new_customers))
        )  # fmt: skip
    cards += [
        ("CSAT", format_number(o.csat), ""),
        ("NPS", format_number(o.nps), ""),
        ("Open complaints", format_number(sat.complaints.open), ""),
        ("At-risk customers", format_number(churn.status_counts.get("at_risk", 0)), ""),
        ("Overdue care tasks", format_number(agenda.counts.care_tasks_overdue), ""),
    ]
    return "\n".join(
        f'<div class="card"><div class="value">{html_text(v)}</div>'
        f'<div class="label">{html_text(k)}</div>{extra}</div>'
        for k, v, extra in cards
    )


def render_html(reports: Reports, query: ReportQuery) -> str:
    """The whole report page for one (as_of, known_at) query: the same bytes whenever it is
    rendered again for the same query (no generation time on it)."""
    d = collect(reports, query)
    sections = render_business(d) + render_sections(d, first=4)
    tz, zone = query.tz, d.zone
    meta = [
        ("Store", html_text(d.store)),
        ("As of", time_html(query.as_of, tz, zone)),
        ("Known at", time_html(query.known_at, tz, zone)),
        ("Time zone", html_text(zone)),
    ]
    meta_html = "\n".join(
        f'<dt>{html_text(k)}</dt><dd id="meta-{html_text(k.lower().replace(" ", "-"))}">{v}</dd>'
        for k, v in meta
    )
    empty = (
        no_data(f"This store has no customers yet as of {d.day}: every section below is empty "
                "until customers are registered (crm-es exec, crm-es import customers).")
        if not d.seg.customers and not d.monthly.months else ""
    )  # fmt: skip
    body = "\n".join(sections)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="crm-es">
<title>CRM report as of {html_text(query.reference_date.isoformat())}</title>
<style>{STYLE}@@FONT@@</style>
</head>
<body>
<header>
<h1>CRM report</h1>
<dl>
{meta_html}
</dl>
</header>
<main>
{empty}<div class="cards" id="headline">
{_cards(d)}
</div>
{body}
<footer>Generated by crm-es. Every figure is as of the business time above, counting only what had
been recorded by the knowledge time; days, months and times are in the store's time zone
({html_text(zone)}). Charts drawn with matplotlib; Chinese text falls back to an embedded subset
of Noto Sans SC (SIL Open Font License 1.1) where no CJK font is installed.</footer>
</main>
</body>
</html>
"""
    # The font subset carries exactly the characters of the finished page (placeholders apart).
    font_css = font_face_css(page)
    return page.replace("@@FONT@@", font_css and f"\n{font_css}\n", 1)


def write_html_report(
    reports: Reports, out: Path, as_of: Moment = None, known_at: Moment = None
) -> Path:
    """Write the self-contained HTML report to ``out`` (atomically) and return its path."""
    query = ReportQuery.at(as_of, known_at, tz=reports.store.timezone)
    page = render_html(reports, query)
    out = Path(out)
    with replaced(out) as f:  # whole or not at all; never over a device or a folder
        f.write(page.encode("utf-8"))
    return out
