"""``crm-es report html``: every report in ONE self-contained HTML file, with charts.

    from crm_es import CRM
    from crm_es.reports.html.page import write_html_report
    from crm_es.reports.api import Reports

    with CRM() as crm, Reports(crm) as reports:
        write_html_report(reports, Path("crm-report.html"), as_of="2026-06-30")

The file works offline: charts are inline SVG drawn by matplotlib (an optional dependency: the
``reports`` extra), the style sheet is inline, and there are no scripts, fonts or images to fetch.
Every figure is computed for ONE (as_of, known_at) pair, fixed before the first report runs, so
the sections agree with each other. Besides the report Structs, three small fact queries feed the
charts: complaint resolution times (folded as the satisfaction report folds them), loyalty points
per month and care tasks by status (folded as the agenda folds them).

This module frames and writes the page (style sheet, header with the query, headline cards,
footer). What it shows is gathered by :mod:`crm_es.reports.html.data` (reports and
fact queries in one :class:`~crm_es.reports.html.data.PageData`) and drawn by
:mod:`crm_es.reports.html.sections` (one section per report).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Final

from crm_es.reports.api import Moment, Reports
from crm_es.reports.html.data import collect
from crm_es.reports.html.sections import format_number, html_text, render_sections
from crm_es.reports.query import ReportQuery

STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue",
  Arial, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 0;
  color: #1d2733; background: #f4f6f8; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header { background: #1d3557; color: #fff; padding: 20px 28px; }
header h1 { margin: 0 0 8px; font-size: 1.6rem; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0;
  font-size: 0.9rem; }
header dt { opacity: 0.75; } header dd { margin: 0; font-family: ui-monospace, monospace; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
  margin: 20px 0 8px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px;
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }
.card .value { font-size: 1.7rem; font-weight: 700; }
.card .label { font-size: 0.85rem; color: #5a6675; }
section { background: #fff; border-radius: 8px; padding: 8px 22px 18px; margin: 18px 0;
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }
section h2 { font-size: 1.2rem; margin: 14px 0 4px; }
section p.note { color: #5a6675; font-size: 0.88rem; margin: 0 0 8px; }
figure.chart { margin: 10px 0; }
figure.chart svg { display: block; height: auto; }
.row { display: flex; flex-wrap: wrap; gap: 10px 28px; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e7eb; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
footer { color: #5a6675; font-size: 0.8rem; margin-top: 24px; }
"""


def render_html(reports: Reports, query: ReportQuery) -> str:
    """The whole report page for one (as_of, known_at) query: the same bytes whenever it is
    rendered again for the same query (no generation time on it)."""
    d = collect(reports, query)
    sections = render_sections(d)
    o, seg, sat, churn, agenda = d.sat.overall, d.seg, d.sat, d.churn, d.agenda
    cards = [
        ("Customers", format_number(len(seg.customers))),
        ("CSAT", format_number(o.csat)),
        ("NPS", format_number(o.nps)),
        ("Open complaints", format_number(sat.complaints.open)),
        ("At-risk customers", format_number(churn.status_counts.get("at_risk", 0))),
        ("Overdue care tasks", format_number(agenda.counts.care_tasks_overdue)),
    ]
    card_html = "\n".join(
        f'<div class="card"><div class="value">{html_text(v)}</div>'
        f'<div class="label">{html_text(k)}</div></div>'
        for k, v in cards
    )
    meta = [
        ("Store", d.store),
        ("As of", query.as_of_iso),
        ("Known at", query.known_at_iso),
        ("Time zone", reports.store.timezone_name),
    ]
    meta_html = "\n".join(
        f"<dt>{html_text(k)}</dt>"
        f'<dd id="meta-{html_text(k.lower().replace(" ", "-"))}">{html_text(v)}</dd>'
        for k, v in meta
    )
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="crm-es">
<title>CRM report as of {html_text(query.reference_date.isoformat())}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>CRM report</h1>
<dl>
{meta_html}
</dl>
</header>
<main>
<div class="cards" id="headline">
{card_html}
</div>
{body}
<footer>Generated by crm-es. Every figure is as of the business time above, counting only what had
been recorded by the knowledge time. Charts drawn with matplotlib.</footer>
</main>
</body>
</html>
"""


def write_html_report(
    reports: Reports, out: Path, as_of: Moment = None, known_at: Moment = None
) -> Path:
    """Write the self-contained HTML report to ``out`` (atomically) and return its path."""
    query = ReportQuery.at(as_of, known_at, tz=reports.store.timezone)
    page = render_html(reports, query)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A unique name next to the target (so the rename is atomic), created with the umask.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
