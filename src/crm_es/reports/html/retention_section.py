"""The retention section of the HTML page: the cohort heat map, retention and repeat-purchase
rates of the newest cohorts at a few milestones, and the churn rule's statuses at the end of
each of the last months.

The figures are the ``retention`` report's (:mod:`crm_es.reports.retention`) for the page's one
(as_of, known_at) query, every customer counted; the chart is
:func:`crm_es.reports.html.retention_chart.cohort_heatmap`.
"""

from __future__ import annotations

from typing import Final

from crm_es.reports.html.blocks import figure, section, table
from crm_es.reports.html.data import PageData
from crm_es.reports.html.people import no_data
from crm_es.reports.html.retention_chart import MAX_COHORTS, cohort_heatmap
from crm_es.reports.retention import Cohort

MILESTONES: Final = (1, 2, 3, 6)  # months since the first purchase that the newest cohorts reach
TABLE_ROWS: Final = 12  # the newest cohorts and months in the tables (the chart has more)


def _at(cohort: Cohort, period: int) -> float | None:
    """The retention rate of ``cohort`` ``period`` months on (None: not reached yet)."""
    return cohort.periods[period].retention_rate if period < len(cohort.periods) else None


def retention_section(d: PageData, n: int) -> str:
    """Cohort heat map, cohorts at milestones, statuses by month."""
    report = d.retention
    title = f"{n}. Retention by cohort"
    note = (
        "Customers grouped by the month of their first purchase (in the store's time zone). "
        "Retention: % of the cohort with a purchase in the month; repeat: % that had bought on "
        "a second day by the end of the month (it never falls). Statuses by the churn rule at "
        "each month's end, the report date's month on that date."
    )
    if not report.cohorts:
        return section(
            "retention", title, note, no_data(f"No purchases yet as of {d.day}: no cohorts.")
        )
    shown = report.cohorts[-MAX_COHORTS:]
    rates = [[p.retention_rate for p in c.periods] for c in shown]
    points = sum(len(r) for r in rates)
    partial = report.months[-1].partial
    newest = report.cohorts[-TABLE_ROWS:][::-1]
    return section(
        "retention", title, note,
        figure("chart-retention",
               cohort_heatmap("chart-retention", [c.cohort for c in shown],
                              [c.customers for c in shown], rates, partial),
               "Retention heat map by cohort", points),
        '<div class="row">',
        table(f"Newest cohorts (last {TABLE_ROWS})",
              ["Cohort", "Customers", *(f"Month {m} %" for m in MILESTONES), "Repeat by now %"],
              [(c.cohort, c.customers, *(_at(c, m) for m in MILESTONES),
                c.periods[-1].repeat_rate) for c in newest]),
        table(f"Churn-rule status at each month's end (last {TABLE_ROWS})",
              ["Month", "Status on", "Customers", "Active", "At risk", "Churned"],
              [(m.month, m.status_on, m.customers, m.active, m.at_risk, m.churned)
               for m in report.months[-TABLE_ROWS:][::-1]]),
        "</div>",
    )  # fmt: skip
