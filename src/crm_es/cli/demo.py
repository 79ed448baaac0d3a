"""``crm-es demo``: a realistic demo data set, its read models, a summary and an HTML report.

At the end of the timeline the demo runs the nightly job once (``crm-es maintain`` for today,
with the shipped care rules), as a shop's system would after its day: the care rules schedule
their greetings, return visits, check-ins and win-back calls, so the agenda and the HTML report
show tasks nobody typed in, and the summary says how many. Its command ids are made of the day,
the rule and the customer, so the same seed on the same day gives the same store.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crm_es.cli.shared import Context, FiniteRange
from crm_es.domain.errors import CrmError
from crm_es.store.url import parse_store_url

if TYPE_CHECKING:
    from crm_es.app.maintenance import MaintenanceReport
    from crm_es.app.service import CRM
    from crm_es.reports.api import Reports

pass_ctx = click.make_pass_decorator(Context)


def _reset_sqlite(db_url: str) -> None:
    config = parse_store_url(db_url)
    if config.is_postgres:
        raise click.UsageError("--reset only deletes SQLite files; use an empty schema instead")
    name = config.env["SQLITE_DBNAME"]
    # The master key beside it goes too: a new store gets a new key.
    for suffix in ("", "-wal", "-shm", ".key"):
        Path(name + suffix).unlink(missing_ok=True)


@click.command()
@click.option(
    "--customers",
    type=click.IntRange(1, 1_000_000),
    default=2000,
    show_default=True,
    help="How many customers to generate.",
)
@click.option(
    "--years",
    type=FiniteRange(0.1, 20),
    default=2.0,
    show_default=True,
    help="How many years of history, ending now.",
)
@click.option(
    "--seed",
    type=int,
    default=7,
    show_default=True,
    help="Random seed: the same seed gives the same data.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("crm-report.html"),
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--timezone",
    default="Asia/Shanghai",
    show_default=True,
    metavar="ZONE",
    help="The new store's time zone (days and months of the reports are cut in it).",
)
@click.option("--reset", is_flag=True, help="Delete the SQLite store first (demo data only!).")
@click.pass_context
def demo(
    ctx: click.Context,
    customers: int,
    years: float,
    seed: int,
    out: Path,
    timezone: str,
    reset: bool,
) -> None:
    """Build a realistic demo store, run the read models, print a summary, write an HTML report.

    Refuses to write into a store that already holds events, unless --reset (SQLite only).

    \b
    Example:
      crm-es demo --reset --customers 500 --seed 1
    """
    from crm_es.app.service import CRM
    from crm_es.domain.principals import embedded

    state: Context = ctx.obj
    if reset:
        _reset_sqlite(state.db_url)
    # The demo stands for a shop's system: it records what its staff and channels did, each
    # named as the person it acted for.
    with CRM(state.db_url, principal=embedded("system:demo")) as app:
        _build(app, customers, years, seed, out, timezone)


def _build(app: CRM, customers: int, years: float, seed: int, out: Path, timezone: str) -> None:
    from crm_es.demo.generator import generate_commands
    from crm_es.demo.summary import demo_summary, goals_line
    from crm_es.reports.api import Reports

    if (app.recorder.max_notification_id() or 0) > 0:
        raise click.ClickException(
            f"the store {app.store.config.redacted_url()} already holds events; use --reset "
            "or another --db"
        )
    app.store.set_timezone(timezone)
    started = time.monotonic()
    commands = list(generate_commands(customers=customers, years=years, seed=seed))
    rejected: list[str] = []
    with click.progressbar(length=len(commands), label="recording history", file=sys.stderr) as bar:
        for command, outcome in zip(commands, app.execute_many(commands), strict=True):
            if isinstance(outcome, CrmError | Exception):
                rejected.append(f"{type(command).__name__}: {outcome}")
            bar.update(1)
    events = app.recorder.max_notification_id() or 0
    click.echo(
        f"{len(commands)} commands, {events} events, {len(rejected)} rejected "
        f"in {time.monotonic() - started:.1f} s",
        err=True,
    )
    for line in rejected[:5]:
        click.echo(f"  rejected {line}", err=True)
    with Reports(app) as reports:
        with click.progressbar(
            length=max(events, 1), label="building read models", file=sys.stderr
        ) as bar:
            done = [0]

            def advance(position: int, head: int) -> None:
                bar.update(position - done[0])
                done[0] = position

            reports.engine.catch_up_many(list(reports.engine.models), advance)
        care = _run_maintenance(app)  # reads the read models just built: the at-risk customers
        reports.engine.catch_up_many(list(reports.engine.models))  # and the tasks it scheduled
        reports.refresh = False
        click.echo(
            demo_summary(
                reports.segments(), reports.satisfaction(), reports.churn(), reports.agenda()
            ),
            nl=False,
        )
        click.echo(_care_line(care))
        click.echo(goals_line(reports.goals()))
        written = _write_html(reports, out)
    click.echo(
        f"{written}   ({time.monotonic() - started:.1f} s in all)",
        err=True,
    )


def _run_maintenance(app: CRM) -> MaintenanceReport:
    """``crm-es maintain`` for today with the shipped care rules, the at-risk high-value
    customers computed as that command computes them (the win-back rule needs the
    population)."""
    from crm_es.app.care_maintenance import high_value
    from crm_es.app.care_rules import default_rules
    from crm_es.app.maintenance import day_start, maintain, maintenance_day
    from crm_es.reports.facts.care_targets import HighValue, load_at_risk_high_value

    rules = default_rules()
    at_risk = None
    win_back = rules.rule("win_back")
    if win_back is not None:
        currency, least = high_value(win_back)
        start = day_start(app, maintenance_day(app))
        spec = HighValue(currency=currency, min_net_spend=least)
        at_risk = load_at_risk_high_value(app.store, start, spec)
    report = maintain(app, care=rules, at_risk=at_risk)
    for error in report.errors[:5]:
        click.echo(f"  maintain: {error}", err=True)
    return report


def _care_line(report: MaintenanceReport) -> str:
    """What the care rules scheduled, for the summary."""
    scheduled = sum(report.care_scheduled.values())
    per_rule = ", ".join(
        f"{rule.replace('_', ' ')} {n}" for rule, n in report.care_scheduled.items() if n
    )
    return (
        f"Care rules (crm-es maintain for {report.day}): {scheduled} tasks scheduled"
        + (f" ({per_rule})" if per_rule else "")
        + f"; {report.points_expired} points expiries and {report.tiers_changed} tier changes "
        "recorded"
    )


def _write_html(reports: Reports, out: Path) -> str:
    """The HTML report, or why there is none: the store and the summary stand without it."""
    try:
        from crm_es.reports.html.page import write_html_report
    except ImportError as e:
        return f"HTML report skipped: it needs matplotlib ({e}): pip install 'crm-es[reports]'"
    write_html_report(reports, out)
    return f"HTML report: {out.resolve()}"
