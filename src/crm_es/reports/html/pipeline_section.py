"""The pipeline section of the HTML page: the sales opportunities as of the page's date.

A chart of the open amount and the weighted forecast at each open stage of the pipeline, then
the tables: by stage (open count and amounts, how many reached the stage and the share that
reached the next one), the overall figures (weighted forecast, win rate, cycle time), by owner,
and the reasons deals were lost.

Every figure is the ``pipeline`` report's (:mod:`crm_es.reports.pipeline`, the one definition the
command line's ``report pipeline`` shows too) for the page's one (as_of, known_at) query. Amounts
are never summed across currencies: the chart is drawn in the store's currency (the first
currency of the report when no opportunity is in it) and the tables have a column per currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.html.blocks import figure, section, table
from crm_es.reports.html.charts import BAR_COLOUR, chart_style, to_svg
from crm_es.reports.html.data import PageData
from crm_es.reports.html.people import no_data
from crm_es.reports.pipeline import PipelineReport, StagePipeline

WEIGHTED_COLOUR: Final = "#2e7d32"


def chart_currency(report: PipelineReport) -> str:
    """The currency the chart is drawn in: the store's when an opportunity is in it."""
    if TIER_CURRENCY in report.currencies or not report.currencies:
        return TIER_CURRENCY
    return report.currencies[0]


def stage_amounts(chart_id: str, stages: Sequence[StagePipeline], currency: str) -> tuple[str, int]:
    """Horizontal bars per open stage: the open amount and, beside it, the weighted forecast
    (open amount × the stage's win probability); returns the SVG and how many bars it draws."""
    title = f"Open amount and weighted forecast by stage ({currency})"
    labels = [f"{s.label} ({s.stage})" for s in stages]
    opened = [float(Decimal(s.open_amount.get(currency, "0"))) for s in stages]
    weighted = [float(Decimal(s.weighted_amount.get(currency, "0"))) for s in stages]
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 1.4 + 0.55 * len(stages)), layout="constrained")
        ax = fig.subplots()
        ys = list(range(len(stages)))[::-1]
        height = 0.38
        ax.barh([y + height / 2 for y in ys], opened, height, color=BAR_COLOUR,
                label="open amount")  # fmt: skip
        ax.barh([y - height / 2 for y in ys], weighted, height, color=WEIGHTED_COLOUR,
                label="weighted forecast")  # fmt: skip
        for y, s, v in zip(ys, stages, opened, strict=True):
            ax.annotate(f"{v:,.0f} ({s.open:,} open)", (v, y + height / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        for y, v in zip(ys, weighted, strict=True):
            ax.annotate(f"{v:,.0f}", (v, y - height / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        ax.set_yticks(ys, labels)
        ax.set_xlim(0, max(1.0, *opened) * 1.3)  # room for the labels right of the bars
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel(f"Amount ({currency})")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        drawn = sum(1 for v in (*opened, *weighted) if v)
        return to_svg(fig, chart_id, title, lang="zh-CN"), drawn


def _amounts(amounts: dict[str, str], currencies: list[str]) -> list[Decimal]:
    return [Decimal(amounts[c]) for c in currencies]


def _tables(report: PipelineReport) -> list[str]:
    cur = report.currencies
    o = report.overall
    overall = table(
        "Overall",
        ["Figure", "Value"],
        [("opened by the date", report.opened), ("open", o.open),
         *((f"open amount ({c})", Decimal(o.open_amount[c])) for c in cur),
         *((f"weighted forecast ({c})", Decimal(o.weighted_amount[c])) for c in cur),
         ("won", o.won), ("lost", o.lost),
         *((f"won amount ({c})", Decimal(o.won_amount[c])) for c in cur),
         ("win rate %", o.win_rate), ("mean cycle days", o.cycle_days_mean),
         ("mean cycle days, won", report.won_cycle_days_mean),
         ("mean cycle days, lost", report.lost_cycle_days_mean)],
    )  # fmt: skip
    stages = table(
        "By stage",
        ["Stage", "Key", "Win %", "Open", *(f"Open ({c})" for c in cur),
         *(f"Weighted ({c})" for c in cur), "Reached", "Next", "Conversion %"],
        [(s.label, s.stage, s.probability, s.open, *_amounts(s.open_amount, cur),
          *_amounts(s.weighted_amount, cur), s.reached, s.next_stage or "–", s.conversion)
         for s in report.by_stage],
        lang="zh-CN",
    )  # fmt: skip
    owners = table(
        "By owner",
        ["Owner", "Open", *(f"Open ({c})" for c in cur), *(f"Weighted ({c})" for c in cur),
         "Won", "Lost", "Win rate %", "Mean cycle days"],
        [(w.owner, w.open, *_amounts(w.open_amount, cur), *_amounts(w.weighted_amount, cur),
          w.won, w.lost, w.win_rate, w.cycle_days_mean) for w in report.by_owner],
    )  # fmt: skip
    lost = (
        table("Lost reasons", ["Reason", "Lost", "Share %", *(f"Amount ({c})" for c in cur)],
              [(r.lost_reason or "(none given)", r.lost, r.share,
                *_amounts(r.lost_amount, cur)) for r in report.lost_reasons])
        if report.lost_reasons
        else no_data(f"No opportunity lost yet as of {report.reference_date}.")
    )  # fmt: skip
    return ['<div class="row">', overall, lost, "</div>", stages, owners]


def pipeline_section(d: PageData, n: int) -> str:
    """The section of the page's query, numbered ``n``."""
    return render_pipeline(d.pipeline, d.day, n)


def render_pipeline(report: PipelineReport, day: str, n: int) -> str:
    """Chart and tables of the pipeline report of ``day``."""
    title = f"{n}. Sales pipeline"
    note = (
        "Sales opportunities as of the date. Weighted forecast = open amount × the win "
        "probability of the stage it had reached (as stamped when it got there); win rate = won "
        "/ (won + lost); cycle = days from opening to closing; conversion = of the "
        "opportunities that reached a stage, the share that reached the next (won after the "
        "last). Amounts are per currency, never summed across currencies."
    )
    if not report.opened:
        return section(
            "pipeline", title, note, no_data(f"No sales opportunities opened yet as of {day}.")
        )
    currency = chart_currency(report)
    svg, drawn = stage_amounts("chart-pipeline", report.by_stage, currency)
    chart = (
        figure("chart-pipeline", svg, "Open amount and weighted forecast by stage", drawn)
        if drawn
        else no_data(f"No open opportunity in {currency} as of {day}: nothing to forecast.")
    )
    return section("pipeline", title, note, chart, *_tables(report))
