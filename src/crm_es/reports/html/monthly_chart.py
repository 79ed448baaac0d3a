"""The chart of revenue, orders and new customers by month: one bar panel per figure.

Revenue gets a panel per currency (amounts in different currencies share no axis, as they
share no sum). The month of the report date, usually not over, is drawn hatched and lighter
and labelled "to date", so its shorter bar does not read as a fall.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from crm_es.reports.html.charts import chart_style, month_ticks, to_svg

PANEL_COLOURS: Final = {"revenue": "#3a6ea5", "orders": "#2a9d8f", "new": "#e76f51"}
MAX_MONTHS: Final = 24  # two years of bars stay readable at the page's width


def _panel(
    ax: Axes, values: Sequence[float], partial: bool, colour: str, label: str, integer: bool
) -> None:
    xs = list(range(len(values)))
    bars = ax.bar(xs, values, color=colour, width=0.75)
    if partial and bars:
        last = bars[-1]
        last.set_alpha(0.45)
        last.set_hatch("///")
        last.set_edgecolor(colour)
    ax.set_ylabel(label)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1.0, max(values, default=0.0)) * 1.08)
    ax.set_xlim(-0.6, len(values) - 0.4)


def monthly_chart(
    chart_id: str,
    months: Sequence[str],
    partial: bool,
    revenue: Mapping[str, Sequence[float]],
    orders: Sequence[int],
    new_customers: Sequence[int],
) -> str:
    """Bar panels sharing the month axis: revenue per currency, orders, new customers.
    ``partial``: the last month is the report date's, counted to that date."""
    title = "Revenue, orders and new customers by month"
    panels = len(revenue) + 2
    with chart_style(chart_id):
        fig = Figure(figsize=(7.5, 1.55 * panels + 1.0), layout="constrained")
        axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
        fig.suptitle(title, fontsize=11, fontweight="bold")
        for ax, (currency, values) in zip(axes, revenue.items(), strict=False):
            _panel(ax, values, partial, PANEL_COLOURS["revenue"], f"Revenue ({currency})", False)
        _panel(axes[-2], [float(v) for v in orders], partial, PANEL_COLOURS["orders"], "Orders",
               True)  # fmt: skip
        _panel(axes[-1], [float(v) for v in new_customers], partial, PANEL_COLOURS["new"],
               "New customers", True)  # fmt: skip
        month_ticks(axes[-1], months)
        axes[-1].set_xlabel("Month (store time zone)")
        if partial:
            axes[0].legend(
                handles=[Patch(facecolor="#bbbbbb", hatch="///", label=f"{months[-1]}: to date")],
                loc="upper left",
                fontsize=8,
            )
        return to_svg(fig, chart_id, title)
