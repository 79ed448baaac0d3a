"""The goals section of the HTML page: the customer-management plan's goals as of the page's
date (评估效果).

A chart of each goal's progress — how far its value has come from the baseline towards the
target, in % of the way — beside the share of its period gone by (a goal on its straight-line
path has the two bars equal), then the table of every goal: baseline, value so far, target, the
path's value for the date and whether it is on track.

Every figure is the ``goals`` report's (:mod:`crm_es.reports.goals`, the one definition the
command line's ``report goals`` shows too) for the page's one (as_of, known_at) query.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from matplotlib.figure import Figure

from crm_es.reports.goals import GoalProgress, GoalsReport
from crm_es.reports.html.blocks import figure, section, table
from crm_es.reports.html.charts import BAR_COLOUR, chart_style, to_svg
from crm_es.reports.html.data import PageData
from crm_es.reports.html.people import no_data

ELAPSED_COLOUR: Final = "#9e9e9e"


def progress(goal: GoalProgress) -> Decimal | None:
    """% of the way from the start (the baseline; for revenue, nothing) to the target the
    value has come; None without a value, or without a baseline to start from."""
    if goal.value is None:
        return None
    start = Decimal(0) if goal.metric == "revenue" else goal.baseline
    if start is None:
        return None
    way = Decimal(goal.target) - Decimal(start)
    if way == 0:
        return None
    return (Decimal(goal.value) - Decimal(start)) / way * 100


def progress_chart(chart_id: str, goals: list[GoalProgress]) -> tuple[str, int]:
    """Horizontal bars per goal with a progress: progress and time elapsed (%)."""
    title = "Progress to the target and time elapsed (%)"
    shown = [(g, p) for g in goals if (p := progress(g)) is not None]
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 1.4 + 0.55 * max(len(shown), 1)), layout="constrained")
        ax = fig.subplots()
        ys = list(range(len(shown)))[::-1]
        height = 0.38
        done = [float(p) for _, p in shown]
        gone = [float(g.elapsed) for g, _ in shown]
        ax.barh([y + height / 2 for y in ys], done, height, color=BAR_COLOUR, label="progress")
        ax.barh([y - height / 2 for y in ys], gone, height, color=ELAPSED_COLOUR,
                label="time elapsed")  # fmt: skip
        for y, v in zip(ys, done, strict=True):
            ax.annotate(f"{v:,.0f} %", (max(v, 0), y + height / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        ax.set_yticks(ys, [f"{g.goal_id} ({g.metric})" for g, _ in shown])
        ax.set_xlim(min(0.0, *done), max(100.0, *done) * 1.15)
        ax.set_xlabel("% of the way to the target / of the period")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        return to_svg(fig, chart_id, title, lang="zh-CN"), len(shown) * 2


def goals_section(d: PageData, n: int) -> str:
    """The section of the page's query, numbered ``n``."""
    return render_goals(d.goals, d.day, n)


def _number(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _track(goal: GoalProgress) -> str:
    return "–" if goal.on_track is None else ("on track" if goal.on_track else "behind")


def render_goals(report: GoalsReport, day: str, n: int) -> str:
    """Chart and table of the goals report of ``day``."""
    title = f"{n}. Goals of the plan"
    note = (
        "Goals of the customer-management plan as set, revised and closed by the date. Value = "
        "the metric over the period so far (retention: as of the date); baseline = the metric "
        "over as many days before the period; path = where a straight line from the baseline "
        "to the target stands today (revenue: the target × the share of the period gone); on "
        "track = the value is at or better than the path. Each metric as its own report "
        "defines it."
    )
    if not report.goals:
        return section("goals", title, note, no_data(f"No goals set yet as of {day}."))
    svg, drawn = progress_chart("chart-goals", report.goals)
    chart = (
        figure("chart-goals", svg, "Progress towards each goal's target", drawn)
        if drawn
        else no_data(f"No goal has a value and a baseline to measure progress by as of {day}.")
    )
    goals = table(
        "Goals",
        ["Goal", "Metric and scope", "Owner", "Period", "Target", "Baseline", "Value",
         "Elapsed %", "Path", "On track"],
        [(g.goal_id if g.status == "open" else f"{g.goal_id} ({g.status})",
          g.metric if g.scope_value is None else f"{g.metric}, {g.scope} {g.scope_value}",
          g.owner, f"{g.starts_on} – {g.ends_on}",
          f"{g.target} {g.currency}" if g.currency else Decimal(g.target), _number(g.baseline),
          _number(g.value), Decimal(g.elapsed), _number(g.path), _track(g))
         for g in report.goals],
        lang="zh-CN",
    )  # fmt: skip
    return section("goals", title, note, chart, goals)
