"""The readable summary ``crm-es demo`` prints: what a customer-management team looks at first."""

from __future__ import annotations

from crm_es.reports.agenda import AgendaReport
from crm_es.reports.churn import ChurnReport
from crm_es.reports.goals import GoalsReport
from crm_es.reports.satisfaction import SatisfactionReport
from crm_es.reports.segments import SegmentsReport


def _figure(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.1f}{suffix}"


def demo_summary(
    segments: SegmentsReport,
    satisfaction: SatisfactionReport,
    churn: ChurnReport,
    agenda: AgendaReport,
    months: int = 12,
) -> str:
    lines = [f"Customers: {len(segments.customers)}   as of {segments.as_of[:10]}", ""]
    lines.append("Segments (R×F grid)            customers")
    for name, size in sorted(segments.segment_sizes.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<28}{size:>9}")
    lines.append("")
    lines.append("Lifecycle: " + ", ".join(f"{k} {v}" for k, v in segments.lifecycle_sizes.items()))
    lines.append("")
    lines.append(f"Satisfaction by month (last {months})   CSAT     NPS   answers")
    for row in satisfaction.by_month[-months:]:
        lines.append(
            f"  {row.key:<28}{_figure(row.csat):>8}{_figure(row.nps):>8}{row.responses:>9}"
        )
    overall = satisfaction.overall
    lines.append(
        f"  {'overall':<28}{_figure(overall.csat):>8}{_figure(overall.nps):>8}"
        f"{overall.responses:>9}"
    )
    complaints = satisfaction.complaints
    lines.append("")
    lines.append(
        f"Complaints: {complaints.filed} filed, {complaints.open} open, "
        f"SLA breached {_figure(complaints.sla_breach_rate, '%')}, "
        f"median resolution {_figure(complaints.resolution_hours_median, ' h')}"
    )
    at_risk = [c for c in churn.customers if c.status == "at_risk"]
    lines.append(
        f"Churn: {churn.status_counts.get('active', 0)} active, {len(at_risk)} at risk, "
        f"{churn.status_counts.get('churned', 0)} churned, {churn.won_back} won back"
    )
    if churn.bgnbd is not None:
        b = churn.bgnbd
        lines.append(
            f"BG/NBD ({b.time_unit}s): r={b.r:.3f} alpha={b.alpha:.3f} a={b.a:.3f} b={b.b:.3f}"
            f"{'' if b.converged else '  (not converged)'}"
        )
    top = sorted(at_risk, key=lambda c: c.p_alive if c.p_alive is not None else 1.0)[:5]
    if top:
        lines.append(
            "  most at risk: "
            + ", ".join(f"{c.external_ref} (P(alive) {_figure(c.p_alive)})" for c in top)
        )
    lines.append(
        f"Care agenda: {agenda.counts.care_tasks_overdue} overdue tasks, "
        f"{agenda.counts.care_tasks_due} due in {agenda.days_ahead} days, "
        f"{agenda.counts.birthdays} birthdays ahead, "
        f"{agenda.counts.complaints_past_sla} complaints past SLA"
    )
    return "\n".join(lines) + "\n"


def goals_line(report: GoalsReport) -> str:
    """The plan's open goals: value so far against target, and on track or behind."""
    shown = [
        f"{g.goal_id} {g.metric}{f' ({g.scope_value})' if g.scope_value else ''} "
        f"{g.value or '—'} → {g.target}"
        f"{'' if g.on_track is None else (' on track' if g.on_track else ' behind')}"
        for g in report.goals
        if g.status == "open"
    ]
    return "Goals (crm-es report goals): " + ("; ".join(shown) if shown else "none open")
