"""``crm-es report retention``: filters that choose the customers counted, and for people the
cohort × month grid of one measure with the monthly churn statuses below it.

Unlike ``--owner`` and ``--segment`` of the per-customer reports, which choose the rows listed
while totals stay those of every customer, these filters choose whom the cohorts are made of:
retention by owner is a different grid, not a shorter list. JSON carries the whole report, CSV
one row per cohort and period. The report itself (and numpy with it) is imported only when the
command runs, so ``--help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.render import emit, format_table, resolved_format
from crm_es.cli.shared import Context
from crm_es.cli.table_view import TABLE_WIDTH, table_columns

pass_ctx = click.make_pass_decorator(Context)

# The cells a table can show, one at a time (JSON and CSV carry every one).
GRID_MEASURES: Final = ("retention_rate", "repeat_rate", "retained", "repeat_customers", "active",
                        "at_risk", "churned")  # fmt: skip
_RATES: Final = frozenset({"retention_rate", "repeat_rate"})
_CAPTIONS: Final = {
    "retention_rate": "% of the cohort with a purchase day in the month (rounded)",
    "repeat_rate": "% of the cohort with a second purchase day by the end of the month (rounded)",
    "retained": "customers of the cohort with a purchase day in the month",
    "repeat_customers": "customers of the cohort with a second purchase day by the month's end",
    "active": "customers of the cohort active by the churn rule at the month's end",
    "at_risk": "customers of the cohort at risk by the churn rule at the month's end",
    "churned": "customers of the cohort churned (by the rule or explicitly) at the month's end",
}

retention_options: Final[list[Callable[[Any], Any]]] = [
    click.option(
        "--owner",
        default=None,
        metavar="STAFF",
        help="Count only the customers of this owner as of the report date (e.g. staff:wang; "
        "'(unassigned)' for none).",
    ),
    click.option(
        "--segment",
        default=None,
        metavar="NAME",
        help="Count only the customers in this segment, lifecycle stage, tier, churn status or "
        "RFM code as of the report date (e.g. Champions, 重要价值客户, repeat, gold, 545).",
    ),
    click.option(
        "--region",
        default=None,
        metavar="REGION",
        help="Count only the customers of this region as of the report date ('(none)' for none).",
    ),
    click.option(  # the report's WINDOW_MONTHS and MAX_WINDOW_MONTHS (numpy stays unloaded here)
        "--months",
        type=click.IntRange(1, 1200),
        default=120,
        show_default=True,
        help="The months the report covers, up to the report date's: cohorts that began "
        "earlier are left out (counted as before_window).",
    ),
    click.option(
        "--measure",
        type=click.Choice(GRID_MEASURES),
        default="retention_rate",
        show_default=True,
        help="The figure a table's grid shows in its cells (JSON and CSV carry every one).",
    ),
    click.option(
        "--columns",
        default=None,
        metavar="A,B,…|all",
        help=f"The grid's columns (cohort, customers, m0, m1, …; default: those that fit "
        f"{TABLE_WIDTH} characters).",
    ),
]


def _cell(value: object, measure: str) -> object:
    if measure in _RATES and isinstance(value, float):
        return round(value)
    return value


def present_retention(report: Any, fmt: str | None, measure: str, columns: str | None) -> None:
    """The report as JSON or CSV, or for a terminal the grid of ``measure`` and the statuses by
    month."""
    from crm_es.reports.api import TABLE_ROWS
    from crm_es.reports.retention import grid_rows, month_rows

    fmt = resolved_format(fmt)
    if fmt != "table":
        emit(report, TABLE_ROWS["retention"](report), fmt)
        return
    chosen = [
        f"{name} {value}"
        for name, value in (("owner", report.owner), ("segment", report.segment),
                            ("region", report.region))
        if value is not None
    ]  # fmt: skip
    who = f"{report.buyers:,} customers with a purchase" + (
        f" ({', '.join(chosen)})" if chosen else ""
    )
    lines = [
        f"Cohorts by month of first purchase; m0 = that month, m1 = the next, …; as of "
        f"{report.reference_date}; {who}.",
        f"{measure}: {_CAPTIONS[measure]}.",
    ]
    if report.before_window:
        lines.append(
            f"{report.before_window:,} of them first bought before the {report.window_months} "
            "months shown (--months): in no cohort."
        )
    if not report.cohorts:
        why = "no first purchase in these months" if report.before_window else "no purchases yet"
        click.echo("\n".join(lines) + f"\n({why}: no cohorts)")
        return
    grid = [{k: _cell(v, measure) for k, v in row.items()} for row in grid_rows(report, measure)]
    text = "\n".join(lines) + "\n"
    text += format_table(
        grid,
        columns=table_columns("retention", grid, columns),
        fit=None if columns else TABLE_WIDTH,
    )
    partial = report.months[-1].partial
    text += "\nChurn-rule status at the end of each month" + (
        f" ({report.months[-1].month}: on {report.reference_date})" if partial else ""
    )
    text += ":\n" + format_table(month_rows(report))
    click.echo(text, nl=False)


def retention_command(shared: Sequence[Callable[[Any], Any]]) -> click.Command:
    """The ``report retention`` command, with the options every report shares (``shared``:
    as-of, known-at, format, refresh and the churn rule's, given by the report group)."""

    def retention(
        ctx: Context, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
        k: float, floor_days: int, at_risk_share: float, measure: str, columns: str | None,
        months: int, **filters: str | None,
    ) -> None:  # fmt: skip
        """Cohorts by month of first purchase x months since: retention and repeat-purchase
        rates, churn-rule statuses at each month's end; the filters choose whom the cohorts
        count.

        \b
        Example:
          crm-es report retention --as-of 2026-06-30 --owner staff:wang --measure repeat_rate
        """
        from crm_es.reports.api import Reports

        rule = ChurnRule(k=k, floor_days=floor_days, at_risk_share=at_risk_share)
        with Reports(ctx.app, refresh=refresh) as reports:
            data = reports.retention(
                as_of=as_of, known_at=known_at, rule=rule, window_months=months, **filters
            )
        present_retention(data, fmt, measure, columns)

    decorated: Callable[..., Any] = pass_ctx(retention)
    for option in [*shared, *retention_options]:
        decorated = option(decorated)
    return click.command("retention")(decorated)
