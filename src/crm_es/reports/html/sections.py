"""The sections of the HTML report: one ``<section>`` per report, each a chart and its tables.

Every section is a function of the :class:`~crm_es.reports.html.data.PageData` of one
query; :func:`render_sections` gives them in page order (segments, R×F grid, satisfaction,
complaints against the SLA, churn, loyalty points, care tasks and agenda, staff KPIs). Charts are
inline SVG from :mod:`crm_es.reports.html.charts`; tables right-align their numeric cells. The
small HTML helpers here (:func:`html_text`, :func:`format_number`) also serve the page frame in
:mod:`crm_es.reports.html.page`.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal

from crm_es.analytics.rfm import CN8_CLASSES, RF_GRID_V1, RF_SEGMENTS
from crm_es.analytics.satisfaction import median, percentile
from crm_es.reports.html import charts
from crm_es.reports.html.data import POINTS_KINDS, PageData


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


def html_text(value: object) -> str:
    """``value`` as text safe inside an HTML element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def format_number(value: float | int | None, digits: int = 1) -> str:
    """Thousands separators; ``digits`` decimals for a float; a dash for a missing figure."""
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
            text = (
                format_number(value)
                if isinstance(value, int | float) or value is None
                else str(value)
            )
        cls = ' class="num"' if numeric else ""
        return f"<{tag}{cls}>{html_text(text)}</{tag}>"

    lang_attr = f' lang="{lang}"' if lang else ""
    head = "".join(f"<th>{html_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>\n" for row in rows)
    return (
        f"<table{lang_attr}><caption>{html_text(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"
    )


def _figure(chart_id: str, svg: str, caption: str) -> str:
    return (
        f'<figure class="chart" id="{html_text(chart_id)}" data-chart="{html_text(chart_id)}">\n'
        f"{svg}\n"
        f"<figcaption hidden>{html_text(caption)}</figcaption></figure>"
    )


def _section(section_id: str, title: str, note: str, *parts: str) -> str:
    body = "\n".join(parts)
    return (
        f'<section id="{html_text(section_id)}">\n<h2>{html_text(title)}</h2>\n'
        f'<p class="note">{html_text(note)}</p>\n{body}\n</section>'
    )


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


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
        "Points granted, redeemed and expired per month (in the store's time zone).",
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
        "Per owner as of the report date; revenue is net spend per currency (never summed "
        "across currencies).",
        _table("Owners",
               ["Owner", "Customers", *(f"Revenue ({c})" for c in kpi.currencies), "CSAT", "NPS",
                "Complaints", "Open", "Median hours", "Tasks done", "On time %", "Overdue"],
               [(k.owner, k.customers,
                 *(Decimal(k.revenue.get(c, "0")) for c in kpi.currencies), k.csat, k.nps,
                 k.complaints, k.complaints_open, k.resolution_hours_median, k.care_tasks_done,
                 k.care_tasks_on_time_rate, k.care_tasks_overdue) for k in kpi.owners]),
    )  # fmt: skip


def render_sections(d: PageData) -> list[str]:
    """Every section of the page, in page order."""
    return [
        _segments_section(d),
        _rf_grid_section(d),
        _satisfaction_section(d),
        _complaints_section(d),
        _churn_section(d),
        _points_section(d),
        _care_section(d),
        _kpi_section(d),
    ]
