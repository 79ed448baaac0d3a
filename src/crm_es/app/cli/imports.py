"""``crm-es import customers|purchases FILE``: idempotent CSV import with per-row errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_es.app.cli.shared import Context, emit_json
from crm_es.app.importer import CUSTOMER_COLUMNS, PURCHASE_COLUMNS, count_rows, import_csv

pass_ctx = click.make_pass_decorator(Context)
file_argument = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


def _run(ctx: Context, file: Path, kind: str, register_missing: bool) -> None:
    app = ctx.app
    with click.progressbar(
        length=count_rows(file), label=f"importing {kind}", file=sys.stderr
    ) as bar:
        report = import_csv(app, file, kind, register_missing=register_missing, progress=bar.update)
    for error in report.errors:
        click.echo(f"{file} line {error.line}: {error.error}", err=True)
    emit_json(report)
    if report.rejected:
        sys.exit(1)


@click.group("import")
def import_group() -> None:
    """Import customers or purchases from CSV (UTF-8, header row). Safe to re-run.

    \b
    Example:
      crm-es import customers customers.csv
      crm-es import purchases purchases.csv --register-missing
    """


@import_group.command("customers")
@file_argument
@pass_ctx
def import_customers(ctx: Context, file: Path) -> None:
    """Register the customers in FILE; rows whose external_ref exists count as unchanged."""
    _run(ctx, file, "customers", False)


@import_group.command("purchases")
@file_argument
@click.option(
    "--register-missing",
    is_flag=True,
    help="Register customers whose customer_ref is unknown (instead of rejecting).",
)
@pass_ctx
def import_purchases(ctx: Context, file: Path, register_missing: bool) -> None:
    """Record the purchases in FILE; rows already stored count as unchanged."""
    _run(ctx, file, "purchases", register_missing)


import_customers.help = (import_customers.help or "") + (
    "\n\n    Columns (only external_ref required): "
    + ", ".join(CUSTOMER_COLUMNS)
    + ". tags: separated by ';'."
    + "\n\n    \b\n    Example:\n      crm-es import customers customers.csv"
)
import_purchases.help = (import_purchases.help or "") + (
    "\n\n    Columns: "
    + ", ".join(PURCHASE_COLUMNS)
    + " (the first four required). occurred_at: an ISO date or date-time."
    + " Without order_id, a row is identified by its content."
    + "\n\n    \b\n    Example:\n      crm-es import purchases purchases.csv --register-missing"
)
