"""``crm-es report html``: every report in ONE self-contained HTML file, with charts.

    from crm_es import CRM
    from crm_es.projections.html_report import write_html_report
    from crm_es.projections.reports import Reports

    with CRM() as crm, Reports(crm) as reports:
        write_html_report(reports, Path("crm-report.html"), as_of="2026-06-30")

The file works offline: charts are inline SVG drawn by matplotlib (an optional dependency: the
``reports`` extra), the style sheet is inline, and there are no scripts, fonts or images to fetch.
Every figure is computed for ONE (as_of, known_at) pair, fixed before the first report runs, so
the sections agree with each other. Besides the report Structs, three small fact queries feed the
charts: complaint resolution times (folded as the satisfaction report folds them), loyalty points
per month and care tasks by status (folded as the agenda folds them).
"""

from __future__ import annotations

import html
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from crm_es.app.database import Tx
from crm_es.domain.values import Severity
from crm_es.projections import charts
from crm_es.projections.agenda import AgendaReport, TaskState, fold_tasks
from crm_es.projections.churn import ChurnReport
from crm_es.projections.kpi import KpiReport
from crm_es.projections.report_query import ReportQuery
from crm_es.projections.reports import Moment, Reports
from crm_es.projections.rfm import CN8_CLASSES, RF_GRID_V1, RF_SEGMENTS
from crm_es.projections.satisfaction import (
    ComplaintState,
    SatisfactionReport,
    fold_complaints,
    hours_between,
)
from crm_es.projections.satisfaction_metrics import median, percentile
from crm_es.projections.segments import SegmentsReport
from crm_es.projections.timefmt import iso

POINTS_KINDS: Final = ("granted", "redeemed", "expired")


@dataclass
class ComplaintTimes:
    """Complaints of one severity as of the cut."""

    filed: int = 0
    open: int = 0
    open_past_sla: int = 0
    hours: list[float] = field(default_factory=list)  # filed → last resolution, resolved ones
    breached: list[bool] = field(default_factory=list)  # resolved after sla_due, per hours item
    sla_hours: list[float] = field(default_factory=list)  # sla_due − filed, every complaint


def complaint_times(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, ComplaintTimes]:
    """Resolution hours and SLA per severity, from the ``complaint_events`` fact rows."""
    by_severity: dict[str, ComplaintTimes] = {}
    for c in fold_complaints(tx, tables, query):
        times = by_severity.setdefault(c.severity or "(none)", ComplaintTimes())
        times.filed += 1
        if c.sla_due is not None:
            times.sla_hours.append(hours_between(c.filed_at, c.sla_due))
        if c.status == "resolved" and c.resolved_at is not None:
            times.hours.append(hours_between(c.filed_at, c.resolved_at))
            times.breached.append(c.sla_due is not None and c.resolved_at > c.sla_due)
        else:
            times.open += 1
            times.open_past_sla += int(_open_past_sla(c, query.as_of_iso))
    known = [s.value for s in Severity]
    return dict(sorted(by_severity.items(), key=lambda kv: _severity_rank(kv[0], known)))


def _open_past_sla(c: ComplaintState, as_of_iso: str) -> bool:
    return c.sla_due is not None and c.sla_due < as_of_iso


def _severity_rank(severity: str, known: list[str]) -> tuple[int, str]:
    return (known.index(severity), "") if severity in known else (len(known), severity)


def points_by_month(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, dict[str, int]]:
    """Points granted / redeemed / expired per month (YYYY-MM of the business time, UTC)."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT SUBSTR(occurred_at, 1, 7), kind, SUM(points) "
        f"FROM {tables['points_facts']} WHERE {cut} GROUP BY SUBSTR(occurred_at, 1, 7), kind",
        params,
    )
    months: dict[str, dict[str, int]] = {}
    for month, kind, points in rows:
        months.setdefault(str(month), dict.fromkeys(POINTS_KINDS, 0))[str(kind)] = int(points)
    return dict(sorted(months.items()))


def task_status(task: TaskState, today: date) -> str:
    """One of the keys of :data:`charts.TASK_COLOURS` (overdue = due before the reference day)."""
    if task.status == "cancelled":
        return "cancelled"
    if task.status == "completed":
        on_time = task.completed_on is not None and (
            task.due_on is None or task.completed_on <= task.due_on
        )
        return "completed on time" if on_time else "completed late"
    return (
        "overdue" if task.due_on is not None and task.due_on < today else "scheduled (not yet due)"
    )


def care_task_counts(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, dict[str, int]]:
    """Care tasks per care kind and status, as of the cut."""
    counts: dict[str, dict[str, int]] = {}
    for task in fold_tasks(tx, tables, query):
        row = counts.setdefault(task.care_kind or "(none)", dict.fromkeys(charts.TASK_COLOURS, 0))
        row[task_status(task, query.reference_date)] += 1
    return dict(sorted(counts.items()))


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


def store_label(url: str) -> str:
    """The store URL without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- HTML -------------------------------------------------------------------------------------

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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _table(
    caption: str, header: Sequence[str], rows: Iterable[Sequence[object]], lang: str | None = None
) -> str:
    """A small table; numeric cells (int, float, None) are right-aligned."""

    def cell(tag: str, value: object) -> str:
        numeric = value is None or isinstance(value, int | float | Decimal)
        if isinstance(value, Decimal):
            text = f"{value:,}"
        else:
            text = _fmt(value) if isinstance(value, int | float) or value is None else str(value)
        cls = ' class="num"' if numeric else ""
        return f"<{tag}{cls}>{_e(text)}</{tag}>"

    lang_attr = f' lang="{lang}"' if lang else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>\n" for row in rows)
    return (
        f"<table{lang_attr}><caption>{_e(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"
    )


def _figure(chart_id: str, svg: str, caption: str) -> str:
    return (
        f'<figure class="chart" id="{_e(chart_id)}" data-chart="{_e(chart_id)}">\n{svg}\n'
        f"<figcaption hidden>{_e(caption)}</figcaption></figure>"
    )


def _section(section_id: str, title: str, note: str, *parts: str) -> str:
    body = "\n".join(parts)
    return (
        f'<section id="{_e(section_id)}">\n<h2>{_e(title)}</h2>\n'
        f'<p class="note">{_e(note)}</p>\n{body}\n</section>'
    )


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


@dataclass(frozen=True)
class PageData:
    """Everything the page shows, for one query."""

    query: ReportQuery
    store: str
    seg: SegmentsReport
    sat: SatisfactionReport
    churn: ChurnReport
    agenda: AgendaReport
    kpi: KpiReport
    complaints: dict[str, ComplaintTimes]
    points: dict[str, dict[str, int]]
    tasks: dict[str, dict[str, int]]


def collect(reports: Reports, query: ReportQuery) -> PageData:
    """Run every report and the three fact queries for ``query``."""
    as_of, known_at = query.as_of, query.known_at
    seg = reports.segments(as_of, known_at)
    sat = reports.satisfaction(as_of, known_at)
    churn = reports.churn(as_of, known_at)
    agenda = reports.agenda(as_of, known_at)
    kpi = reports.kpi(as_of, known_at)
    with reports.engine.db.reading() as tx:
        tables: dict[str, str] = {}
        for name in reports.engine.models:
            tables.update(reports.engine.active_tables(tx, name))
        return PageData(
            query=query,
            store=store_label(reports.app.store.url),
            seg=seg,
            sat=sat,
            churn=churn,
            agenda=agenda,
            kpi=kpi,
            complaints=complaint_times(tx, tables, query),
            points=points_by_month(tx, tables, query),
            tasks=care_task_counts(tx, tables, query),
        )


def _segments_section(d: PageData) -> str:
    """Segment sizes on both maps, lifecycle stages and regions."""
    seg = d.seg
    scored = [c for c in seg.customers if c.rfm]
    regions = Counter(c.region or "(unknown)" for c in seg.customers)
    total_scored = len(scored)
    return _section(
        "segments",
        "1. Segments",
        f"RFM quintile scores over the {total_scored:,} customers with a purchase as of the "
        f"date; maps {seg.grid_version} and {seg.cn_map_version}. "
        f"Chinese map thresholds: {seg.cn_threshold_rule}.",
        _figure("chart-segment-sizes",
                charts.segment_sizes("chart-segment-sizes", seg.segment_sizes, RF_SEGMENTS),
                "Customers per segment"),
        _figure("chart-segment-cn-sizes",
                charts.segment_cn_sizes("chart-segment-cn-sizes", seg.segment_cn_sizes,
                                        CN8_CLASSES),
                "Customers per class (Chinese map)"),
        '<div class="row">',
        _table("R×F grid segments", ["Segment", "Customers", "% of scored"],
               [(s, seg.segment_sizes.get(s, 0),
                 _share(seg.segment_sizes.get(s, 0), total_scored)) for s in RF_SEGMENTS]),
        _table("Chinese 8-class map", ["分类", "Customers", "% of scored"],
               [(s, seg.segment_cn_sizes.get(s, 0),
                 _share(seg.segment_cn_sizes.get(s, 0), total_scored)) for s in CN8_CLASSES],
               lang="zh-CN"),
        _table("Lifecycle stage", ["Stage", "Customers"],
               [(s.replace("_", " "), n) for s, n in seg.lifecycle_sizes.items()]),
        _table("Region (地区)", ["Region", "Customers"], regions.most_common(),
               lang="zh-CN"),
        "</div>",
    )  # fmt: skip


def _rf_grid_section(d: PageData) -> str:
    """The R×F heat map."""
    scored = [c for c in d.seg.customers if c.rfm]
    cells: dict[tuple[int, int], int] = {}
    for c in scored:
        assert c.rfm is not None
        key = (int(c.rfm[0]), int(c.rfm[1]))
        cells[key] = cells.get(key, 0) + 1
    return _section(
        "rfm-grid",
        "2. R×F grid",
        "Customers per recency (R) and frequency (F) score cell; the name in each cell is the "
        "segment the 10-segment grid assigns to it (monetary is ignored by this map).",
        _figure("chart-rfm-grid", charts.rf_heatmap("chart-rfm-grid", cells, RF_GRID_V1),
                "R×F heat map"),
    )  # fmt: skip


def _satisfaction_section(d: PageData) -> str:
    """CSAT and NPS by month, overall figures."""
    sat = d.sat
    by_month = {b.key: b for b in sat.by_month}
    months = month_range(by_month)
    csat = [by_month[m].csat if m in by_month else None for m in months]
    nps = [by_month[m].nps if m in by_month else None for m in months]
    o = sat.overall
    return _section(
        "satisfaction",
        "3. Satisfaction",
        "CSAT = share of 4–5 answers on 1–5 (×100); NPS = % promoters (9–10) − % detractors "
        "(0–6). Lines join the months that have answers (NPS is asked less often than CSAT).",
        _figure("chart-satisfaction",
                charts.satisfaction_by_month("chart-satisfaction", months, csat, nps),
                "CSAT and NPS by month"),
        '<div class="row">',
        _table("Overall", ["Figure", "Value", "Answers"], [
            ("CSAT", o.csat, o.csat_answers), ("NPS", o.nps, o.nps_answers),
            ("CES mean (1–7)", o.ces_mean, o.ces_answers),
            ("Gap mean (performance − expectation)", o.gap_mean, o.gap_answers)]),
        _table("By month (last 12)", ["Month", "CSAT", "CSAT answers", "NPS", "NPS answers"],
               [(b.key, b.csat, b.csat_answers, b.nps, b.nps_answers)
                for b in sat.by_month[-12:]]),
        "</div>",
    )  # fmt: skip


def _complaints_section(d: PageData) -> str:
    """Resolution times against the SLA, per severity."""
    complaints = d.complaints
    severities = list(complaints)
    sla_ref = {s: median(t.sla_hours) for s, t in complaints.items() if t.sla_hours}
    return _section(
        "complaints",
        "4. Complaint resolution against the SLA",
        "Hours from filing to the last resolution of every complaint resolved as of the date "
        "(red: resolved after its SLA due time); the dashed line is the severity's SLA.",
        _figure("chart-complaints-sla",
                charts.complaint_resolution(
                    "chart-complaints-sla", severities,
                    {s: t.hours for s, t in complaints.items()},
                    {s: t.breached for s, t in complaints.items()},
                    {s: v for s, v in sla_ref.items() if v is not None}),
                "Resolution hours by severity"),
        _table("By severity",
               ["Severity", "Filed", "Open", "Open past SLA", "Median hours", "p90 hours",
                "SLA hours", "Resolved late %"],
               [(s, t.filed, t.open, t.open_past_sla, median(t.hours),
                 percentile(t.hours, 90.0), sla_ref.get(s),
                 _share(sum(t.breached), len(t.breached))) for s, t in complaints.items()]),
    )  # fmt: skip


def _churn_section(d: PageData) -> str:
    """P(alive) histogram, rule status counts and the BG/NBD fit."""
    churn = d.churn
    by_status: dict[str, list[float]] = {s: [] for s in charts.STATUS_COLOURS}
    for cc in churn.customers:
        if cc.p_alive is not None:
            by_status.setdefault(cc.status, []).append(cc.p_alive)
    fit = churn.bgnbd
    fit_rows: list[tuple[str, object]] = (
        [("r", f"{fit.r:.4g}"), ("alpha", f"{fit.alpha:.4g}"), ("a", f"{fit.a:.4g}"),
         ("b", f"{fit.b:.4g}"), ("customers", str(fit.customers)), ("time unit", fit.time_unit),
         ("converged", "yes" if fit.converged else "no")]
        if fit else [("fit", "too few purchasers")]
    )  # fmt: skip
    return _section(
        "churn",
        "5. Churn",
        f"P(alive) from a BG/NBD model fitted on the purchasers as of the date; rule status: "
        f"churned after max({churn.rule.k}× the median gap, {churn.rule.floor_days} days) "
        "without a purchase, or explicitly. BG/NBD gives P(alive) = 1 to a customer with no "
        "repeat purchase, so one-time buyers churned by the rule sit at the right edge.",
        _figure("chart-churn", charts.p_alive_histogram("chart-churn", by_status),
                "P(alive) histogram"),
        '<div class="row">',
        _table("Rule status", ["Status", "Customers"],
               [*[(s.replace("_", " "), n) for s, n in churn.status_counts.items()],
                ("won back", churn.won_back)]),
        _table("BG/NBD fit", ["Parameter", "Value"], fit_rows),
        "</div>",
    )  # fmt: skip


def _points_section(d: PageData) -> str:
    """Loyalty points flow by month."""
    points = d.points
    point_months = month_range(points)
    flows = {k: [points.get(m, {}).get(k, 0) for m in point_months] for k in POINTS_KINDS}
    return _section(
        "points",
        "6. Loyalty points",
        "Points granted, redeemed and expired per month of the business time (UTC).",
        _figure("chart-points", charts.points_flow("chart-points", point_months, flows),
                "Points flow by month"),
        _table("Totals", ["Kind", "Points", "Months"],
               [(k, sum(flows[k]), sum(1 for v in flows[k] if v)) for k in POINTS_KINDS]),
    )  # fmt: skip


def _care_section(d: PageData) -> str:
    """Care tasks by status and care kind, agenda counts."""
    tasks, agenda = d.tasks, d.agenda
    status_totals = {s: sum(row[s] for row in tasks.values()) for s in charts.TASK_COLOURS}
    return _section(
        "care",
        "7. Care tasks and agenda",
        f"Care tasks as of {d.query.reference_date.isoformat()}: overdue = still scheduled and "
        "due before that day; on time = completed on or before the due day.",
        _figure("chart-care-tasks", charts.care_tasks("chart-care-tasks", status_totals),
                "Care tasks by status"),
        '<div class="row">',
        _table("By care kind", ["Care kind", *charts.TASK_COLOURS],
               [(kind.replace("_", " "), *row.values()) for kind, row in tasks.items()]),
        _table(f"Agenda (next {agenda.days_ahead} days)", ["Item", "Count"], [
            ("care tasks due", agenda.counts.care_tasks_due),
            ("care tasks overdue", agenda.counts.care_tasks_overdue),
            ("birthdays", agenda.counts.birthdays),
            ("complaints past SLA", agenda.counts.complaints_past_sla)]),
        "</div>",
    )  # fmt: skip


def _kpi_section(d: PageData) -> str:
    """Staff KPIs per owner."""
    kpi = d.kpi
    return _section(
        "kpi",
        "Staff KPIs",
        f"Per current owner; revenue is net spend in {kpi.currency}.",
        _table("Owners",
               ["Owner", "Customers", f"Revenue ({kpi.currency})", "CSAT", "NPS",
                "Complaints", "Open", "Median hours", "Tasks done", "On time %", "Overdue"],
               [(k.owner, k.customers, Decimal(k.revenue), k.csat, k.nps, k.complaints,
                 k.complaints_open, k.resolution_hours_median, k.care_tasks_done,
                 k.care_tasks_on_time_rate, k.care_tasks_overdue) for k in kpi.owners]),
    )  # fmt: skip


def render_html(reports: Reports, query: ReportQuery, generated_at: datetime | None = None) -> str:
    """The whole report page for one (as_of, known_at) query."""
    d = collect(reports, query)
    sections = [
        _segments_section(d),
        _rf_grid_section(d),
        _satisfaction_section(d),
        _complaints_section(d),
        _churn_section(d),
        _points_section(d),
        _care_section(d),
        _kpi_section(d),
    ]
    o, seg, sat, churn, agenda = d.sat.overall, d.seg, d.sat, d.churn, d.agenda
    generated = iso(generated_at or datetime.now(UTC))
    cards = [
        ("Customers", _fmt(len(seg.customers))),
        ("CSAT", _fmt(o.csat)),
        ("NPS", _fmt(o.nps)),
        ("Open complaints", _fmt(sat.complaints.open)),
        ("At-risk customers", _fmt(churn.status_counts.get("at_risk", 0))),
        ("Overdue care tasks", _fmt(agenda.counts.care_tasks_overdue)),
    ]
    card_html = "\n".join(
        f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>'
        for k, v in cards
    )
    meta = [
        ("Store", d.store),
        ("As of", query.as_of_iso),
        ("Known at", query.known_at_iso),
        ("Generated at", generated),
    ]
    meta_html = "\n".join(
        f'<dt>{_e(k)}</dt><dd id="meta-{_e(k.lower().replace(" ", "-"))}">{_e(v)}</dd>'
        for k, v in meta
    )
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="crm-es">
<title>CRM report as of {_e(query.reference_date.isoformat())}</title>
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
    query = ReportQuery.at(as_of, known_at)
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
