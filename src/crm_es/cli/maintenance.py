"""``crm-es maintain``: the nightly job that records expired points and tier changes."""

from __future__ import annotations

import sys

import click

from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)


@click.command()
@click.option(
    "--at",
    default=None,
    metavar="D",
    help="The day to record the changes for (a date in the store's time zone; not after "
    "today). [default: today]",
)
@pass_ctx
def maintain(ctx: Context, at: str | None) -> None:
    """Record the time-driven changes due by day D: points lots past their expiry as
    PointsExpired, tiers the rolling 12-month rule has changed as TierChanged; and
    finish the wipe of an erasure that a reader open at the time held back.

    Reports and `show` count both as of any date without it; this writes them into the
    history. Safe to run twice or on two hosts at once: each change is stored once (command
    ids are made of the day, the customer and the change). Prints a JSON summary.

    \b
    Example (a nightly cron job):
      crm-es maintain
      crm-es maintain --at 2026-06-30
    """
    from crm_es.app.maintenance import candidates, maintenance_day
    from crm_es.app.maintenance import maintain as run_maintenance

    app = ctx.app
    maintenance_day(app, at)  # a bad --at fails before the scan starts
    with click.progressbar(
        length=len(candidates(app)), label="checking customers", file=sys.stderr
    ) as bar:
        report = run_maintenance(app, at, progress=bar.update)
    for error in report.errors:
        click.echo(error, err=True)
    emit_json(report)
    if report.errors:
        sys.exit(1)
