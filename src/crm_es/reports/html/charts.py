"""Charts for the HTML report: matplotlib figures rendered as inline SVG.

Text stays text (``svg.fonttype = "none"``): the browser draws labels with the page's font
stack (:mod:`crm_es.reports.html.fonts`: the reader's CJK fonts, else the embedded subset), and
the file stays small (no glyph outlines per label). The stack is set once in the page's style
sheet, not on every ``<text>``. Matplotlib *measures* text with its own DejaVu Sans and, for
Chinese, the same Noto Sans SC file the page embeds, never with whatever fonts this machine has
installed, so a chart's layout (and the page's bytes) are the same on every machine.

Every SVG gets its element ids prefixed with its chart id, so several SVGs can share one HTML
document without their clip paths and markers colliding. No pyplot: figures are plain
``Figure`` objects (no GUI backend, nothing kept open); the style is applied with ``rc_context``
and restored afterwards, so rendering leaves matplotlib's global settings as it found them.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final

import numpy as np
import pylopdf_fonts_zh_cn
from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

STATUS_COLOURS: Final = {"active": "#2e7d32", "at_risk": "#ef8f00", "churned": "#c62828"}
POINTS_COLOURS: Final = {"granted": "#1f77b4", "redeemed": "#2ca02c", "expired": "#d62728"}
TASK_COLOURS: Final = {
    "scheduled (not yet due)": "#1f77b4",
    "overdue": "#d62728",
    "completed on time": "#2ca02c",
    "completed late": "#ef8f00",
    "cancelled": "#7f7f7f",
}
BAR_COLOUR: Final = "#3a6ea5"
WIDE: Final = (7.5, 3.6)  # inches; SVG units are points (72 per inch)


@functools.cache
def _measuring_fonts() -> list[str]:
    """The families matplotlib lays text out with: DejaVu Sans (its own), then Noto Sans SC
    (the embedded font's source) for the glyphs DejaVu lacks."""
    font_manager.fontManager.addfont(str(pylopdf_fonts_zh_cn.sans_path()))
    return ["DejaVu Sans", "Noto Sans SC"]


@contextmanager
def chart_style(chart_id: str) -> Iterator[None]:
    # A dict literal in the call, so it type-checks against matplotlib's rc key names.
    style = rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": chart_id,  # deterministic ids, distinct per chart
            "font.family": ["sans-serif"],
            "font.sans-serif": _measuring_fonts(),
            "font.size": 9,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.axisbelow": True,
            "legend.frameon": False,
        }
    )
    with style, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        yield


def to_svg(fig: Figure, chart_id: str, title: str, lang: str | None = None) -> str:
    """The figure as an ``<svg>`` element ready to inline: no XML prologue or metadata, ids
    prefixed with ``chart_id``, no font family of its own, scaling to the page width."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    # The page's style sheet gives chart text its font stack (see fonts.CHART_FONT_STACK).
    svg = re.sub(r"font-family: [^;\"]*;? ?", "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', svg)
    match = re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    assert match is not None
    width_px = float(match.group(1)) * 4 / 3
    lang_attr = f' lang="{lang}"' if lang else ""
    svg = svg.replace(
        match.group(0),
        f'width="100%" style="max-width: {width_px:.0f}px" role="img"{lang_attr}',
        1,
    )
    head_end = svg.index(">") + 1
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;")
    return f"{svg[:head_end]}\n <title>{safe_title}</title>{svg[head_end:]}".strip()


def _no_data(ax: Axes, text: str = "No data as of this date") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _label_bars(ax: Axes, xs: Sequence[float], values: Sequence[float], horizontal: bool) -> None:
    for x, v in zip(xs, values, strict=True):
        if horizontal:
            ax.annotate(f"{v:,.0f}", (v, x), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)  # fmt: skip
        else:
            ax.annotate(f"{v:,.0f}", (x, v), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=8)  # fmt: skip


def _headroom(values: Sequence[float]) -> float:
    """Axis limit above the largest bar, leaving room for its label (1 when all are zero)."""
    return max(1.0, max(values, default=0)) * 1.12


def month_ticks(ax: Axes, months: Sequence[str]) -> None:
    step = max(1, -(-len(months) // 24))
    ax.set_xticks(range(0, len(months), step))
    ax.set_xticklabels(months[::step], rotation=45, ha="right")


def segment_sizes(chart_id: str, sizes: Mapping[str, int], order: Sequence[str]) -> str:
    """Bar chart: customers per segment of the 10-segment R×F grid, in the grid's order."""
    title = "Customers per RFM segment (10-segment R×F grid)"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 3.8), layout="constrained")
        ax = fig.subplots()
        values = [sizes.get(name, 0) for name in order]
        ax.bar(range(len(order)), values, color=BAR_COLOUR)
        _label_bars(ax, range(len(order)), values, horizontal=False)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=30, ha="right")
        ax.set_title(title)
        ax.set_xlabel("Segment")
        ax.set_ylabel("Customers")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, _headroom(values))
        return to_svg(fig, chart_id, title)


def segment_cn_sizes(chart_id: str, sizes: Mapping[str, int], order: Sequence[str]) -> str:
    """Horizontal bars: customers per class of the Chinese 8-class map (labels in Chinese)."""
    title = "Customers per class (Chinese 8-class RFM map)"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 3.4))
        fig.subplots_adjust(left=0.2, right=0.95, top=0.88, bottom=0.15)
        ax = fig.subplots()
        values = [sizes.get(name, 0) for name in order]
        ys = list(range(len(order)))[::-1]
        ax.barh(ys, values, color=BAR_COLOUR)
        _label_bars(ax, ys, values, horizontal=True)
        ax.set_yticks(ys)
        ax.set_yticklabels(order, fontsize=10)
        ax.set_title(title)
        ax.set_xlabel("Customers")
        ax.set_ylabel("Class (客户分类)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0, _headroom(values))
        return to_svg(fig, chart_id, title, lang="zh-CN")


def rf_heatmap(
    chart_id: str, counts: Mapping[tuple[int, int], int], grid: Mapping[tuple[int, int], str]
) -> str:
    """Heat map of customers per (R, F) score cell, each cell named with its segment."""
    title = "Customers per R×F cell, with the segment each cell maps to"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 5.2), layout="constrained")
        ax = fig.subplots()
        matrix = np.array([[counts.get((r, f), 0) for f in range(1, 6)] for r in range(5, 0, -1)])
        image = ax.imshow(matrix, cmap="Blues", aspect="auto", vmin=0, vmax=max(1, matrix.max()))
        top = matrix.max() or 1
        for row, r in enumerate(range(5, 0, -1)):
            for col, f in enumerate(range(1, 6)):
                value = int(matrix[row, col])
                colour = "white" if value > top * 0.6 else "#222"
                ax.text(col, row - 0.12, f"{value:,}", ha="center", va="center", color=colour,
                        fontsize=11, fontweight="bold")  # fmt: skip
                ax.text(col, row + 0.22, grid[(r, f)], ha="center", va="center", color=colour,
                        fontsize=7.5)  # fmt: skip
        ax.set_xticks(range(5), [str(f) for f in range(1, 6)])
        ax.set_yticks(range(5), [str(r) for r in range(5, 0, -1)])
        ax.grid(False)
        ax.set_title(title)
        ax.set_xlabel("F score (purchase days; 5 = most)")
        ax.set_ylabel("R score (recency; 5 = most recent)")
        bar = fig.colorbar(image, ax=ax, label="Customers", shrink=0.9)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        return to_svg(fig, chart_id, title)


def _series(values: Sequence[float | None]) -> tuple[list[int], list[float]]:
    xs = [i for i, v in enumerate(values) if v is not None]
    return xs, [float(v) for v in values if v is not None]


def satisfaction_by_month(
    chart_id: str,
    months: Sequence[str],
    csat: Sequence[float | None],
    nps: Sequence[float | None],
) -> str:
    """Two panels sharing the month axis: CSAT (0–100) above, NPS (−100…+100) below."""
    title = "CSAT and NPS by month"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 5.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        fig.suptitle(title, fontsize=11, fontweight="bold")
        if not months:
            _no_data(top)
            _no_data(bottom)
            return to_svg(fig, chart_id, title)
        xs, ys = _series(csat)
        top.plot(xs, ys, marker="o", color="#1f77b4", label="CSAT")
        top.set_ylim(0, 105)  # room for a marker at 100
        top.set_yticks(range(0, 101, 20))
        top.set_ylabel("CSAT (% answering 4–5)")
        xs, ys = _series(nps)
        bottom.plot(xs, ys, marker="s", color="#9467bd", label="NPS")
        bottom.axhline(0, color="#555", linewidth=0.8)
        bottom.set_ylim(-105, 105)
        bottom.set_yticks(range(-100, 101, 50))
        bottom.set_ylabel("NPS (promoters − detractors)")
        bottom.set_xlabel("Month of the answer")
        bottom.set_xlim(-0.5, len(months) - 0.5)
        month_ticks(bottom, months)
        return to_svg(fig, chart_id, title)


def complaint_resolution(
    chart_id: str,
    severities: Sequence[str],
    hours: Mapping[str, Sequence[float]],
    breached: Mapping[str, Sequence[bool]],
    sla_hours: Mapping[str, float],
) -> str:
    """Per severity: box and jittered points of resolution hours (log scale), SLA as a line."""
    title = "Complaint resolution time against the SLA, by severity"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 4.2), layout="constrained")
        ax = fig.subplots()
        ax.set_title(title)
        if not any(hours.get(s) for s in severities):
            _no_data(ax, "No resolved complaints as of this date")
            return to_svg(fig, chart_id, title)
        rng = np.random.default_rng(0)
        floor = 0.1  # log scale: an instant resolution is drawn at 6 minutes
        for i, severity in enumerate(severities):
            values = np.maximum(np.asarray(hours.get(severity, []), dtype=float), floor)
            late = np.asarray(breached.get(severity, []), dtype=bool)
            if values.size:
                ax.boxplot([values], positions=[i], widths=0.5, showfliers=False,
                           medianprops={"color": "#222"}, boxprops={"color": "#555"},
                           whiskerprops={"color": "#555"}, capprops={"color": "#555"})  # fmt: skip
                jitter = rng.uniform(-0.18, 0.18, values.size) + i
                ax.scatter(
                    jitter[~late], values[~late], s=9, c="#2ca02c", alpha=0.7, lw=0, zorder=3
                )
                ax.scatter(jitter[late], values[late], s=9, c="#d62728", alpha=0.8, lw=0, zorder=3)
            if severity in sla_hours:
                sla = sla_hours[severity]
                ax.hlines(sla, i - 0.38, i + 0.38, colors="#d62728", linestyles="--", lw=1.5)
                ax.annotate(f"SLA {sla:g} h", (i + 0.38, sla), xytext=(2, 2),
                            textcoords="offset points", fontsize=7.5, color="#d62728")  # fmt: skip
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(range(len(severities)), list(severities))
        ax.set_xlim(-0.6, len(severities) - 0.3)
        ax.set_xlabel("Severity")
        ax.set_ylabel("Hours from filing to resolution (log)")
        ax.legend(
            handles=[
                Line2D([], [], marker="o", lw=0, color="#2ca02c", label="resolved within SLA"),
                Line2D([], [], marker="o", lw=0, color="#d62728", label="resolved after SLA"),
                Line2D([], [], ls="--", color="#d62728", label="SLA (hours)"),
            ],
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=8,
        )
        return to_svg(fig, chart_id, title)


def p_alive_histogram(chart_id: str, by_status: Mapping[str, Sequence[float]]) -> str:
    """Stacked histogram of BG/NBD P(alive), coloured by the rule status."""
    title = "Churn: distribution of P(alive) (BG/NBD), by rule status"
    with chart_style(chart_id):
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        ax.set_title(title)
        statuses = [s for s in STATUS_COLOURS if by_status.get(s)]
        if not statuses:
            _no_data(ax, "No P(alive): too few purchasers to fit the model")
            return to_svg(fig, chart_id, title)
        ax.hist(
            [list(by_status[s]) for s in statuses],
            bins=np.linspace(0.0, 1.0, 21).tolist(),
            stacked=True,
            color=[STATUS_COLOURS[s] for s in statuses],
            label=[s.replace("_", " ") for s in statuses],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.set_xlim(0, 1)
        ax.set_xlabel("P(alive) as of the date")
        ax.set_ylabel("Customers")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="Rule status", loc="upper left", fontsize=8)
        return to_svg(fig, chart_id, title)


def points_flow(chart_id: str, months: Sequence[str], flows: Mapping[str, Sequence[int]]) -> str:
    """Grouped bars per month: loyalty points granted, redeemed and expired."""
    title = "Loyalty points flow by month"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 3.8), layout="constrained")
        ax = fig.subplots()
        ax.set_title(title)
        if not months:
            _no_data(ax)
            return to_svg(fig, chart_id, title)
        width = 0.27
        for k, (kind, colour) in enumerate(POINTS_COLOURS.items()):
            xs = [i + (k - 1) * width for i in range(len(months))]
            ax.bar(xs, list(flows.get(kind, [0] * len(months))), width, color=colour, label=kind)
        ax.set_xlim(-0.6, len(months) - 0.4)
        month_ticks(ax, months)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("Month of the points event")
        ax.set_ylabel("Points")
        ax.legend(loc="upper left", fontsize=8)
        return to_svg(fig, chart_id, title)


def care_tasks(chart_id: str, counts: Mapping[str, int]) -> str:
    """Horizontal bars: care tasks by status as of the date."""
    title = "Care tasks by status"
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 3.0), layout="constrained")
        ax = fig.subplots()
        ax.set_title(title)
        order = list(TASK_COLOURS)
        values = [counts.get(s, 0) for s in order]
        ys = list(range(len(order)))[::-1]
        ax.barh(ys, values, color=[TASK_COLOURS[s] for s in order])
        _label_bars(ax, ys, values, horizontal=True)
        ax.set_yticks(ys, order)
        ax.set_xlabel("Care tasks")
        ax.set_ylabel("Status")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0, _headroom(values))
        if not any(values):
            ax.legend(handles=[Patch(color="white", label="No care tasks as of this date")])
        return to_svg(fig, chart_id, title)
