"""``crm-es report …``: the read-model reports, as of a business date and a knowledge time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.render import format_option
from crm_es.cli.report_drivers import drivers_command
from crm_es.cli.report_options import (
    SELECTION_OPTIONS,
    as_of_option,
    columns_option,
    known_at_option,
    limit_option,
    owner_option,
    pass_ctx,
    present,
    refresh_option,
    rule_options,
    segment_option,
    sort_option,
    time_unit_option,
)
from crm_es.cli.report_pipeline import pipeline_command
from crm_es.cli.retention import retention_command
from crm_es.cli.shared import Context, FiniteRange, emit_json


@click.group()
def report() -> None:
    """Reports computed from the read models: a table on a terminal, JSON otherwise.

    \b
    Example:
      crm-es report segments --as-of 2026-06-30 --owner staff:wang --sort -monetary
    """


def _report_command(
    name: str, doc: str, extra: list[Callable[[Any], Any]] | None = None
) -> click.Command:
    """The ``report NAME`` command: ``Reports.NAME`` rendered (the reports, and numpy and scipy
    with them, are imported only when one runs)."""

    def command(
        ctx: Context,
        as_of: str | None,
        known_at: str | None,
        fmt: str | None,
        refresh: bool,
        **options: Any,
    ) -> None:
        if "k" in options:  # the churn rule's settings, for the reports that use it
            options["rule"] = ChurnRule(
                k=options.pop("k"),
                floor_days=options.pop("floor_days"),
                at_risk_share=options.pop("at_risk_share"),
            )
        shown = {k: options.pop(k) for k in SELECTION_OPTIONS if k in options}
        from crm_es.reports.api import Reports

        with Reports(ctx.app, refresh=refresh) as reports:
            data = getattr(reports, name)(as_of=as_of, known_at=known_at, **options)
        present(ctx, name, data, fmt, shown)

    command.__doc__ = doc
    decorated: Callable[..., Any] = pass_ctx(command)
    for option in [as_of_option, known_at_option, format_option, refresh_option, *(extra or [])]:
        decorated = option(decorated)
    return click.command(name)(decorated)


report.add_command(
    _report_command(
        "segments",
        """Lifecycle, RFM code and both segment maps per customer.

        \b
        Example:
          crm-es report segments --as-of 2026-06-30 --segment 重要保持客户 --sort -monetary""",
        [
            *rule_options,
            owner_option("customers"),
            segment_option(
                "in this segment, lifecycle stage, tier or RFM code (e.g. "
                "Champions, 重要价值客户, churned, gold, 545)"
            ),
            sort_option,
            limit_option,
            columns_option,
        ],
    )
)
report.add_command(
    _report_command(
        "satisfaction",
        """CSAT, NPS, CES, gap and complaint handling, by month, segment, owner and channel.

        \b
        Example:
          crm-es report satisfaction --sort -responses --limit 20""",
        [sort_option, limit_option, columns_option],
    )
)
report.add_command(
    _report_command(
        "churn",
        """Rule status and BG/NBD P(alive) / expected purchases per customer.

        \b
        Example:
          crm-es report churn --segment at_risk --sort -expected_purchases""",
        [
            *rule_options,
            owner_option("customers"),
            segment_option("of this status (active, at_risk, churned)"),
            sort_option,
            limit_option,
            columns_option,
            time_unit_option,
            click.option(
                "--horizon-days",
                type=click.IntRange(1, 3650),
                default=90,
                show_default=True,
                help="Period for expected purchases.",
            ),
        ],
    )
)
report.add_command(
    _report_command(
        "value",
        """Expected discounted lifetime value (CLV) per buyer in the store's currency: BG/NBD
        purchases x Gamma-Gamma spend per purchase day, the fits, the spend-frequency check
        and the CLV deciles with their share of the total.

        \b
        Example:
          crm-es report value --horizon 365 --discount-rate 0.08 --sort -clv --limit 20""",
        [
            *rule_options,
            owner_option("customers"),
            segment_option("of this churn status (active, at_risk, churned)"),
            sort_option,
            limit_option,
            columns_option,
            time_unit_option,
            click.option(
                "--horizon",
                "horizon_days",
                type=click.IntRange(1, 3650),
                default=365,
                show_default=True,
                metavar="DAYS",
                help="Value the purchases expected in the next DAYS days.",
            ),
            click.option(
                "--discount-rate",
                type=FiniteRange(0.0, 1.0),
                default=0.10,
                show_default=True,
                help="Annual discount rate (0.10 = 10%) applied to each 30-day period's value.",
            ),
        ],
    )
)
report.add_command(
    _report_command(
        "agenda",
        """Care tasks due and overdue, birthdays ahead, complaints past their SLA.

        \b
        Example:
          crm-es report agenda --days-ahead 7 --owner staff:li""",
        [
            owner_option("the items"),
            sort_option,
            limit_option,
            columns_option,
            click.option(
                "--days-ahead",
                type=click.IntRange(0, 366),
                default=14,
                show_default=True,
                help="How far ahead to look.",
            ),
        ],
    )
)
report.add_command(
    _report_command(
        "kpi",
        """Per owner: customers, churned and won back, revenue per currency, CSAT/NPS,
        complaint resolution, care tasks on time, contacts logged.

        \b
        Example:
          crm-es report kpi --period month --as-of 2026-11-30""",
        [
            *rule_options,
            click.option(
                "--period",
                type=click.Choice(["all", "month", "quarter", "year"]),
                default="all",
                show_default=True,
                help="Count revenue, answers, complaints filed, tasks done and contacts only in "
                "the calendar month, quarter or year holding the as-of day (customers, open "
                "complaints and overdue tasks stay as of that day).",
            ),
            owner_option("the row"),
            sort_option,
            columns_option,
        ],
    )
)
report.add_command(
    _report_command(
        "contacts",
        """Last contact per customer and channel, first response times (median, p90) by
        channel and staff, customers not contacted for N days (never contacted: since their
        registration), service records by phase and kind, contacts per staff member. A
        table reads best one --section at a time.

        \b
        Examples:
          crm-es report contacts --section idle --idle-days 60 --owner staff:li
          crm-es report contacts --section response --as-of 2026-06-30 --format json""",
        [
            click.option(
                "--idle-days",
                type=click.IntRange(1, 36500),
                default=90,
                show_default=True,
                help="List customers whose last contact (or registration) is this many days "
                "or more before the as-of day.",
            ),
            click.option(
                "--section",
                type=click.Choice(
                    ["idle", "idle_by_owner", "last_contact", "response", "service", "staff"]
                ),
                default=None,
                help="List only this section's rows (the table then has only its columns).",
            ),
            owner_option("the idle and last-contact rows"),
            sort_option,
            limit_option,
            columns_option,
        ],
    )
)

report.add_command(
    _report_command(
        "funnel",
        """The category funnel 潜在 → 意向 → 准 → 签约 (potential → intended → prospective →
        signed): customers per stage as of the date (partners and internal apart), and for
        each of the last N calendar months the customers per stage at its start and how many
        of them stood at a later stage at its end (conversion rate, %).

        \b
        Example:
          crm-es report funnel --months 6 --as-of 2026-06-30 --format csv""",
        [
            click.option(
                "--months",
                type=click.IntRange(1, 120),
                default=12,
                show_default=True,
                help="The calendar months shown, the as-of day's month last.",
            ),
            sort_option,
            click.option(
                "--limit",
                type=click.IntRange(min=0),
                default=None,
                help="At most this many rows (0: all). [default: all: 6 + 4 per month]",
            ),
            columns_option,
        ],
    )
)


report.add_command(
    _report_command(
        "goals",
        """Goals of the customer-management plan (crm-es exec set_goal …): per goal its
        baseline (the metric over as many days before the period; retention: the day before),
        its value over the period so far, the target, the straight-line path from baseline to
        target for today and whether the value is on track. Each metric as its own report
        defines it.

        \b
        Example:
          crm-es report goals --as-of 2026-06-30 --known-at 2026-07-01 --format csv""",
        [sort_option, limit_option, columns_option],
    )
)

report.add_command(
    retention_command([as_of_option, known_at_option, format_option, refresh_option, *rule_options])
)
report.add_command(
    pipeline_command([as_of_option, known_at_option, format_option, refresh_option,
                      owner_option("the owner rows"), sort_option, limit_option, columns_option],
                     present)
)  # fmt: skip
report.add_command(
    drivers_command([as_of_option, known_at_option, format_option, refresh_option, *rule_options,
                     sort_option, limit_option, columns_option], present)
)  # fmt: skip


@report.command("html")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="The HTML file to write (replaced if it exists).",
)
@as_of_option
@known_at_option
@refresh_option
@pass_ctx
def html(ctx: Context, out: Path, as_of: str | None, known_at: str | None, refresh: bool) -> None:
    """Every report in ONE self-contained HTML file with charts (works offline).

    Needs matplotlib (pip install 'crm-es[reports]'). Prints the path and size as JSON.

    \b
    Example:
      crm-es report html --out crm-report.html --as-of 2026-06-30
    """
    try:
        from crm_es.reports.html.page import write_html_report
    except ImportError as e:
        raise click.ClickException(
            f"the HTML report needs matplotlib ({e}): pip install 'crm-es[reports]'"
        ) from e
    from crm_es.reports.api import Reports

    with Reports(ctx.app, refresh=refresh) as reports:
        path = write_html_report(reports, out, as_of=as_of, known_at=known_at)
    emit_json({"out": str(path), "bytes": path.stat().st_size})
