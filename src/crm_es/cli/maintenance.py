"""``crm-es maintain``: the nightly job that records expired points and tier changes and
schedules the care the rules make due."""

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
@click.option(
    "--care-rules",
    "care_rules",
    default=None,
    metavar="PATH",
    help="A TOML file of care rules (version = 1) instead of the ones shipped with crm-es "
    "(crm_es/app/care_rules.toml: copy it to start).",
)
@pass_ctx
def maintain(ctx: Context, at: str | None, care_rules: str | None) -> None:
    """Record the time-driven changes due by day D: points lots past their expiry as
    PointsExpired, tiers the rolling 12-month rule has changed as TierChanged; and
    finish the wipe of an erasure that a reader open at the time held back. Then schedule
    the care tasks the care rules make due on D: birthday and holiday greetings (only with
    marketing consent), return visits after a first purchase, a large purchase or a resolved
    complaint, check-ins of customers nobody contacted, win-back calls to at-risk high-value
    customers; and cancel open greetings of customers who withdrew consent.

    Reports and `show` count both as of any date without it; this writes them into the
    history. Safe to run twice or on two hosts at once: each change is stored once (command
    ids are made of the day, the customer and the change or rule). Prints a JSON summary
    with the care tasks scheduled per rule.

    \b
    Example (a nightly cron job):
      crm-es maintain
      crm-es maintain --at 2026-06-30
      crm-es maintain --care-rules /etc/crm-es/care_rules.toml
    """
    from crm_es.app.care_maintenance import high_value
    from crm_es.app.care_rules import default_rules, load_rules
    from crm_es.app.maintenance import customers_to_check, day_start, maintenance_day
    from crm_es.app.maintenance import maintain as run_maintenance
    from crm_es.reports.facts.care_targets import HighValue, load_at_risk_high_value

    app = ctx.app
    rules = default_rules() if care_rules is None else load_rules(care_rules)
    start = day_start(app, maintenance_day(app, at))  # a bad --at fails before the scan
    win_back = rules.rule("win_back")
    at_risk = None
    if win_back is not None:  # the population, which the per-customer scan cannot see
        currency, least = high_value(win_back)
        spec = HighValue(currency=currency, min_net_spend=least)
        at_risk = load_at_risk_high_value(app.store, start, spec)
    with click.progressbar(
        length=len(customers_to_check(app, rules)), label="checking customers", file=sys.stderr
    ) as bar:
        report = run_maintenance(app, at, progress=bar.update, care=rules, at_risk=at_risk)
    for error in report.errors:
        click.echo(error, err=True)
    emit_json(report)
    if report.errors:
        sys.exit(1)
