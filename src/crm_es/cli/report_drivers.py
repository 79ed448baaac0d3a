"""``crm-es report drivers``: the factors of satisfaction, the one to fix first on top.

Built by the report group with the options every report shares and its ``present`` (selection,
order, formats), so it lists like the other reports. The report itself (and numpy with it) is
imported only when the command runs, so ``--help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.shared import Context

pass_ctx = click.make_pass_decorator(Context)

Present = Callable[[Context, str, Any, str | None, dict[str, Any]], None]

churn_days_option = click.option(
    "--churn-days",
    type=click.IntRange(1, 3650),
    default=90,
    show_default=True,
    help="Correlate each answer or complaint with its customer being churned this many days "
    "after it (those younger than that are left out).",
)


def drivers_command(shared: Sequence[Callable[[Any], Any]], present: Present) -> click.Command:
    """The ``report drivers`` command, with the options every report shares (``shared``:
    as-of, known-at, format, refresh, the churn rule's, sort, limit, columns)."""

    def drivers(
        ctx: Context, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
        k: float, floor_days: int, at_risk_share: float, churn_days: int, **shown: Any,
    ) -> None:  # fmt: skip
        """Per factor (survey topic, complaint category): dissatisfied / neutral / satisfied
        shares, mean score, correlation with the overall score and with churn, ranked: the
        factor to fix first on top (priority = dissatisfied share x (1 + max(overall_r, 0) +
        max(-churn_r, 0))).

        \b
        Example:
          crm-es report drivers --as-of 2026-06-30 --churn-days 90 --limit 5"""
        from crm_es.reports.api import Reports

        rule = ChurnRule(k=k, floor_days=floor_days, at_risk_share=at_risk_share)
        with Reports(ctx.app, refresh=refresh) as reports:
            data = reports.drivers(as_of=as_of, known_at=known_at, churn_days=churn_days,
                                   rule=rule)  # fmt: skip
        present(ctx, "drivers", data, fmt, shown)

    command: Callable[..., Any] = pass_ctx(drivers)
    for option in [*shared, churn_days_option]:
        command = option(command)
    return click.command("drivers")(command)
