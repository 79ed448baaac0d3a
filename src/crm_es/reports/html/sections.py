"""The report sections of the HTML page: one ``<section>`` per report, each a chart and tables.

Every section is a function of the :class:`~crm_es.reports.html.data.PageData` of one query
and its number on the page: segments, R×F grid, satisfaction, complaints against the SLA,
churn, retention (in :mod:`crm_es.reports.html.retention_section`), customer value (in
:mod:`crm_es.reports.html.value_section`), the sales pipeline (in
:mod:`crm_es.reports.html.pipeline_section`), the plan's goals (in
:mod:`crm_es.reports.html.goals_section`), loyalty points, care tasks and agenda, staff KPIs
(the business and action sections that open the page are in
:mod:`crm_es.reports.html.business`). Charts are inline SVG from
:mod:`crm_es.reports.html.charts`. A chart is drawn only when it has something to show; a
section without data says so in words (``no data yet``) instead of an empty frame.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Final

from crm_es.analytics.rfm import CN8_CLASSES, RF_GRID_V1, RF_SEGMENTS
from crm_es.analytics.satisfaction import median, percentile
from crm_es.reports.facts.buyer_model import MIN_CUSTOMERS_TO_FIT
from crm_es.reports.html import charts
from crm_es.reports.html.blocks import figure, month_range, section, share, table
from crm_es.reports.html.data import POINTS_KINDS, PageData
from crm_es.reports.html.goals_section import goals_section
from crm_es.reports.html.people import no_data
from crm_es.reports.html.pipeline_section import pipeline_section
from crm_es.reports.html.retention_section import retention_section
from crm_es.reports.html.value_section import value_section


def _segments_section(d: PageData, n: int) -> str:
    """Segment sizes on both maps, lifecycle stages and regions."""
    seg = d.seg
    scored = [c for c in seg.customers if c.rfm]
    regions = Counter(c.region or "(unknown)" for c in seg.customers)
    total_scored = len(scored)
    if not seg.customers:
        return section("segments", f"{n}. Segments", "Customers by RFM segment, lifecycle and "
                       "region.", no_data(f"No customers yet as of {d.day}."))  # fmt: skip
    charts_or_note = (
        [figure("chart-segment-sizes",
                charts.segment_sizes("chart-segment-sizes", seg.segment_sizes, RF_SEGMENTS),
                "Customers per segment", total_scored),
         figure("chart-segment-cn-sizes",
                charts.segment_cn_sizes("chart-segment-cn-sizes", seg.segment_cn_sizes,
                                        CN8_CLASSES),
                "Customers per class (Chinese map)", total_scored)]
        if scored else
        [no_data(f"No customer has a purchase yet as of {d.day}, so there are no RFM "
                 "segments.")]
    )  # fmt: skip
    return section(
        "segments",
        f"{n}. Segments",
        f"RFM quintile scores over the {total_scored:,} customers with a purchase as of the "
        f"date; maps {seg.grid_version} and {seg.cn_map_version}. "
        f"Chinese map thresholds: {seg.cn_threshold_rule}.",
        *charts_or_note,
        '<div class="row">',
        *([table("R×F grid segments", ["Segment", "Customers", "% of scored"],
                 [(s, seg.segment_sizes.get(s, 0),
                   share(seg.segment_sizes.get(s, 0), total_scored)) for s in RF_SEGMENTS]),
           table("Chinese 8-class map", ["分类", "Customers", "% of scored"],
                 [(s, seg.segment_cn_sizes.get(s, 0),
                   share(seg.segment_cn_sizes.get(s, 0), total_scored)) for s in CN8_CLASSES],
                 lang="zh-CN")] if scored else []),
        table("Lifecycle stage", ["Stage", "Customers"],
               [(s.replace("_", " "), n) for s, n in seg.lifecycle_sizes.items()]),
        table("Region (地区)", ["Region", "Customers"], regions.most_common(),
               lang="zh-CN"),
        "</div>",
    )  # fmt: skip


def _rf_grid_section(d: PageData, n: int) -> str:
    """The R×F heat map."""
    scored = [c for c in d.seg.customers if c.rfm]
    cells: dict[tuple[int, int], int] = {}
    for c in scored:
        assert c.rfm is not None
        key = (int(c.rfm[0]), int(c.rfm[1]))
        cells[key] = cells.get(key, 0) + 1
    return section(
        "rfm-grid",
        f"{n}. R×F grid",
        "Customers per recency (R) and frequency (F) score cell; the name in each cell is the "
        "segment the 10-segment grid assigns to it (monetary is ignored by this map).",
        figure("chart-rfm-grid", charts.rf_heatmap("chart-rfm-grid", cells, RF_GRID_V1),
                "R×F heat map", len(scored))
        if scored else no_data(f"No customer has a purchase yet as of {d.day}: no R×F scores."),
    )  # fmt: skip


def _satisfaction_section(d: PageData, n: int) -> str:
    """CSAT and NPS by month, overall figures."""
    sat = d.sat
    by_month = {b.key: b for b in sat.by_month}
    months = month_range(by_month)
    csat = [by_month[m].csat if m in by_month else None for m in months]
    nps = [by_month[m].nps if m in by_month else None for m in months]
    o = sat.overall
    title = f"{n}. Satisfaction"
    note = (
        "CSAT = share of 4–5 answers on 1–5 (×100); NPS = % promoters (9–10) − % detractors "
        "(0–6). Lines join the months that have answers (NPS is asked less often than CSAT)."
    )
    points = sum(v is not None for v in csat) + sum(v is not None for v in nps)
    if not points:
        return section(
            "satisfaction", title, note, no_data(f"No CSAT or NPS answers yet as of {d.day}.")
        )
    return section(
        "satisfaction", title, note,
        figure("chart-satisfaction",
                charts.satisfaction_by_month("chart-satisfaction", months, csat, nps),
                "CSAT and NPS by month", points),
        '<div class="row">',
        table("Overall", ["Figure", "Value", "Answers"], [
            ("CSAT", o.csat, o.csat_answers), ("NPS", o.nps, o.nps_answers),
            ("CES mean (1–7)", o.ces_mean, o.ces_answers),
            ("Gap mean (performance − expectation)", o.gap_mean, o.gap_answers)]),
        table("By month (last 12)", ["Month", "CSAT", "CSAT answers", "NPS", "NPS answers"],
               [(b.key, b.csat, b.csat_answers, b.nps, b.nps_answers)
                for b in sat.by_month[-12:]]),
        "</div>",
    )  # fmt: skip


def _complaints_section(d: PageData, n: int) -> str:
    """Resolution times against the SLA, per severity."""
    complaints = d.complaints
    severities = list(complaints)
    sla_ref = {s: median(t.sla_hours) for s, t in complaints.items() if t.sla_hours}
    resolved = sum(len(t.hours) for t in complaints.values())
    title = f"{n}. Complaint resolution against the SLA"
    note = (
        "Hours from filing to the last resolution of every complaint resolved as of the date "
        "(red: resolved after its SLA due time); the dashed line is the severity's SLA."
    )
    if not complaints:
        return section(
            "complaints", title, note, no_data(f"No complaints filed yet as of {d.day}.")
        )
    return section(
        "complaints", title, note,
        figure("chart-complaints-sla",
                charts.complaint_resolution(
                    "chart-complaints-sla", severities,
                    {s: t.hours for s, t in complaints.items()},
                    {s: t.breached for s, t in complaints.items()},
                    {s: v for s, v in sla_ref.items() if v is not None}),
                "Resolution hours by severity", resolved)
        if resolved else no_data(f"No complaint resolved yet as of {d.day}."),
        table("By severity",
               ["Severity", "Filed", "Open", "Open past SLA", "Median hours", "p90 hours",
                "SLA hours", "Resolved late %"],
               [(s, t.filed, t.open, t.open_past_sla, median(t.hours),
                 percentile(t.hours, 90.0), sla_ref.get(s),
                 share(sum(t.breached), len(t.breached))) for s, t in complaints.items()]),
    )  # fmt: skip


def _churn_section(d: PageData, n: int) -> str:
    """P(alive) histogram, rule status counts and the BG/NBD fit."""
    churn = d.churn
    by_status: dict[str, list[float]] = {s: [] for s in charts.STATUS_COLOURS}
    for cc in churn.customers:
        if cc.p_alive is not None:
            by_status.setdefault(cc.status, []).append(cc.p_alive)
    points = sum(len(v) for v in by_status.values())
    fit = churn.bgnbd
    fit_rows: list[tuple[str, object]] = (
        [("r", f"{fit.r:.4g}"), ("alpha", f"{fit.alpha:.4g}"), ("a", f"{fit.a:.4g}"),
         ("b", f"{fit.b:.4g}"), ("customers", str(fit.customers)), ("time unit", fit.time_unit),
         ("converged", "yes" if fit.converged else "no")]
        if fit else [("fit", "too few purchasers")]
    )  # fmt: skip
    title = f"{n}. Churn"
    note = (
        f"P(alive) from a BG/NBD model fitted on the purchasers as of the date; rule status: "
        f"churned after max({churn.rule.k}× the median gap, {churn.rule.floor_days} days) "
        "without a purchase, or explicitly. BG/NBD gives P(alive) = 1 to a customer with no "
        "repeat purchase, so one-time buyers churned by the rule sit at the right edge."
    )
    if not churn.customers:
        return section(
            "churn",
            title,
            note,
            no_data(f"No purchases yet as of {d.day}: no churn status to show."),
        )
    return section(
        "churn", title, note,
        figure("chart-churn", charts.p_alive_histogram("chart-churn", by_status),
                "P(alive) histogram", points)
        if points else no_data(f"Too few purchasers as of {d.day} to fit the BG/NBD model "
                               f"(it needs {MIN_CUSTOMERS_TO_FIT})."),
        '<div class="row">',
        table("Rule status", ["Status", "Customers"],
               [*[(s.replace("_", " "), n) for s, n in churn.status_counts.items()],
                ("won back", churn.won_back)]),
        table("BG/NBD fit", ["Parameter", "Value"], fit_rows),
        "</div>",
    )  # fmt: skip


def _points_section(d: PageData, n: int) -> str:
    """Loyalty points flow by month."""
    points = d.points
    point_months = month_range(points)
    flows = {k: [points.get(m, {}).get(k, 0) for m in point_months] for k in POINTS_KINDS}
    title = f"{n}. Loyalty points"
    note = "Points granted, redeemed and expired per month (in the store's time zone)."
    if not point_months:
        return section(
            "points", title, note, no_data(f"No loyalty points granted yet as of {d.day}.")
        )
    return section(
        "points", title, note,
        figure("chart-points", charts.points_flow("chart-points", point_months, flows),
                "Points flow by month", sum(1 for k in flows for v in flows[k] if v)),
        table("Totals", ["Kind", "Points", "Months"],
               [(k, sum(flows[k]), sum(1 for v in flows[k] if v)) for k in POINTS_KINDS]),
    )  # fmt: skip


def _care_section(d: PageData, n: int) -> str:
    """Care tasks by status and care kind, agenda counts."""
    tasks, agenda = d.tasks, d.agenda
    status_totals = {s: sum(row[s] for row in tasks.values()) for s in charts.TASK_COLOURS}
    return section(
        "care",
        f"{n}. Care tasks and agenda",
        f"Care tasks as of {d.day}: overdue = still scheduled and "
        "due before that day; on time = completed on or before the due day.",
        figure("chart-care-tasks", charts.care_tasks("chart-care-tasks", status_totals),
                "Care tasks by status", sum(1 for v in status_totals.values() if v))
        if tasks else no_data(f"No care tasks scheduled yet as of {d.day}."),
        '<div class="row">',
        *([table("By care kind", ["Care kind", *charts.TASK_COLOURS],
                 [(kind.replace("_", " "), *row.values()) for kind, row in tasks.items()])]
          if tasks else []),
        table(f"Agenda (next {agenda.days_ahead} days)", ["Item", "Count"], [
            ("care tasks due", agenda.counts.care_tasks_due),
            ("care tasks overdue", agenda.counts.care_tasks_overdue),
            ("birthdays", agenda.counts.birthdays),
            ("complaints past SLA", agenda.counts.complaints_past_sla)]),
        "</div>",
    )  # fmt: skip


def _kpi_section(d: PageData, n: int) -> str:
    """Staff KPIs per owner."""
    kpi = d.kpi
    return section(
        "kpi",
        f"{n}. Staff KPIs",
        "Per owner as of the report date; revenue is net spend per currency (never summed "
        "across currencies).",
        table("Owners",
               ["Owner", "Customers", *(f"Revenue ({c})" for c in kpi.currencies), "CSAT", "NPS",
                "Complaints", "Open", "Median hours", "Tasks done", "On time %", "Overdue"],
               [(k.owner, k.customers,
                 *(Decimal(k.revenue.get(c, "0")) for c in kpi.currencies), k.csat, k.nps,
                 k.complaints, k.complaints_open, k.resolution_hours_median, k.care_tasks_done,
                 k.care_tasks_on_time_rate, k.care_tasks_overdue) for k in kpi.owners])
        if kpi.owners else no_data(f"No customers, so no owners to compare, as of {d.day}."),
    )  # fmt: skip


REPORT_SECTIONS: Final = (
    _segments_section, _rf_grid_section, _satisfaction_section, _complaints_section,
    _churn_section, retention_section, value_section, pipeline_section, goals_section,
    _points_section, _care_section,
    _kpi_section,
)  # fmt: skip


def render_sections(d: PageData, first: int = 1) -> list[str]:
    """The report sections in page order, numbered from ``first``."""
    return [render(d, first + i) for i, render in enumerate(REPORT_SECTIONS)]
