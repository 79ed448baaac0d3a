"""``crm-es report …``: the read-model reports, as of a business date and a knowledge time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.render import emit, format_option
from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)

as_of_option = click.option(
    "--as-of",
    default=None,
    metavar="D",
    help="Business time: count only what occurred up to D (a bare date = end of that day in the "
    "store's time zone). "
    "Default: now.",
)
known_at_option = click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Knowledge time: count only what had been recorded by T. Default: now.",
)
refresh_option = click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Bring the read models up to date first (off when a follower keeps them fresh).",
)


_DEFAULT_RULE = ChurnRule()
rule_options = [
    click.option(
        "--k",
        type=click.FloatRange(0.5, 100),
        default=_DEFAULT_RULE.k,
        show_default=True,
        help="Churn rule: churned after k x the median gap between purchase days...",
    ),
    click.option(
        "--floor-days",
        type=click.IntRange(1, 3650),
        default=_DEFAULT_RULE.floor_days,
        show_default=True,
        help="...or after this many silent days, whichever is longer.",
    ),
    click.option(
        "--at-risk-share",
        type=click.FloatRange(0.05, 1.0),
        default=_DEFAULT_RULE.at_risk_share,
        show_default=True,
        help="At risk after this share of the churn threshold.",
    ),
]


@click.group()
def report() -> None:
    """Reports computed from the read models.

    \b
    Example:
      crm-es report segments --as-of 2026-06-30 --format table
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
        fmt: str,
        refresh: bool,
        **options: Any,
    ) -> None:
        if "k" in options:  # the churn rule's settings, for the reports that use it
            options["rule"] = ChurnRule(
                k=options.pop("k"),
                floor_days=options.pop("floor_days"),
                at_risk_share=options.pop("at_risk_share"),
            )
        from crm_es.reports.api import TABLE_ROWS, Reports

        with Reports(ctx.app, refresh=refresh) as reports:
            data = getattr(reports, name)(as_of=as_of, known_at=known_at, **options)
        emit(data, TABLE_ROWS[name](data), fmt)

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
          crm-es report segments --as-of 2026-06-30 --format table""",
        rule_options,
    )
)
report.add_command(
    _report_command(
        "satisfaction",
        """CSAT, NPS, CES, gap and complaint handling, by month, segment, owner and channel.

        \b
        Example:
          crm-es report satisfaction --format json""",
    )
)
report.add_command(
    _report_command(
        "churn",
        """Rule status and BG/NBD P(alive) / expected purchases per customer.

        \b
        Example:
          crm-es report churn --time-unit week --horizon-days 90""",
        [
            *rule_options,
            click.option(
                "--time-unit",
                type=click.Choice(["day", "week"]),
                default="week",
                show_default=True,
                help="Time unit of the BG/NBD fit.",
            ),
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
        "agenda",
        """Care tasks due and overdue, birthdays ahead, complaints past their SLA.

        \b
        Example:
          crm-es report agenda --days-ahead 7 --format table""",
        [
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
        complaint resolution, care tasks on time.

        \b
        Example:
          crm-es report kpi --format csv""",
        rule_options,
    )
)


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
