"""The cohort heat map of the retention section: a row per cohort (month of first purchase), a
column per month since, each cell the share of the cohort that bought in that month.

Month 0 is 100 % by definition, so the colour scale runs from 0 to the highest rate of the
later months (month 0 is drawn in the darkest colour, its label says 100): otherwise the one
column nobody needs to read would wash every other cell out. Cells of the report date's month,
usually not over, are hatched: their lower rate is a month not yet finished, not a fall.
Months not reached yet are left blank (the lower right triangle, where the legend goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from crm_es.reports.html.charts import chart_style, to_svg

MAX_COHORTS: Final = 24  # the newest ones; two years of rows stay readable at the page's width
CMAP: Final = "YlGnBu"


def cohort_heatmap(
    chart_id: str,
    cohorts: Sequence[str],
    customers: Sequence[int],
    rates: Sequence[Sequence[float | None]],
    partial: bool,
) -> str:
    """Heat map of retention rates (% of each cohort), cohorts oldest at the top. ``rates[i]``
    holds cohort i's periods 0, 1, …; ``partial``: the last period of every row is the report
    date's month, counted to that date."""
    title = "Retention by cohort: % of each cohort buying in each month since its first"
    width = max((len(r) for r in rates), default=0)
    matrix = np.full((len(cohorts), width), np.nan)
    for i, row in enumerate(rates):
        for p, value in enumerate(row):
            if value is not None:
                matrix[i, p] = value
    later = matrix[:, 1:]
    top = float(np.nanmax(later)) if later.size and np.isfinite(later).any() else 100.0
    top = max(top, 1.0)
    with chart_style(chart_id):
        height = 1.4 + 0.24 * max(len(cohorts), 4)
        fig = Figure(figsize=(7.5, height), layout="constrained")
        ax = fig.subplots()
        image = ax.imshow(
            np.ma.masked_invalid(matrix), cmap=CMAP, norm=Normalize(0.0, top, clip=True),
            aspect="auto", interpolation="nearest",
        )  # fmt: skip
        small = 6.5 if width <= 16 else 5.5
        for i in range(len(cohorts)):
            for p in range(width):
                value = matrix[i, p]
                if np.isnan(value):
                    continue
                colour = "white" if min(value, top) > top * 0.6 else "#222"
                ax.text(p, i, f"{value:.0f}", ha="center", va="center", color=colour,
                        fontsize=small)  # fmt: skip
            if partial and rates[i]:
                last = len(rates[i]) - 1
                ax.add_patch(
                    Rectangle((last - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                              edgecolor="#888", linewidth=0)
                )  # fmt: skip
        ax.grid(False)
        ax.set_xticks(range(width))
        ax.set_xticklabels([str(p) for p in range(width)], fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=min(width, 25), integer=True))
        ax.set_yticks(range(len(cohorts)))
        ax.set_yticklabels(
            [f"{c} ({n:,})" for c, n in zip(cohorts, customers, strict=True)], fontsize=7
        )
        ax.set_xlabel("Months since the first purchase (0 = the cohort's month)")
        ax.set_ylabel("Cohort: month of first purchase (customers)")
        ax.set_title(title)
        bar = fig.colorbar(image, ax=ax, label="% of the cohort", shrink=0.9)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        if partial:
            ax.legend(
                handles=[Patch(facecolor="white", edgecolor="#888", hatch="///",
                               label="the report date's month, to date")],
                loc="lower right", fontsize=7,
            )  # fmt: skip
        return to_svg(fig, chart_id, title)
