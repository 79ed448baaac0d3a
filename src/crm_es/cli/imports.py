"""``crm-es import customers|purchases FILE``: idempotent CSV import with per-row errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_es.app.csv_format import (
    CUSTOMER_COLUMNS,
    IMPORT_CACHE_SIZE,
    IMPORT_CHUNK_ROWS,
    PURCHASE_COLUMNS,
)
from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)
file_argument = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
cache_option = click.option(
    "--cache-size",
    type=click.IntRange(min=0),
    default=IMPORT_CACHE_SIZE,
    show_default=True,
    help="Customer states kept in memory during the import (~3 KB each). A file touching "
    "more customers than this is much slower: each is reloaded on every visit.",
)


batch_option = click.option(
    "--batch",
    # A batch is held in memory, a few KB a command: a million is gigabytes already.
    type=click.IntRange(min=1, max=1_000_000),
    default=IMPORT_CHUNK_ROWS,
    show_default=True,
    help="Commands per transaction (a row, and its registration with --register-missing). "
    "Larger is faster. One batch is stored while the next is read and decided, so a crash "
    "loses at most those two, which re-running the file stores.",
)


encoding_option = click.option(
    "--encoding",
    default="auto",
    show_default=True,
    metavar="NAME",
    help="The file's text encoding. auto: UTF-8 (with or without a byte order mark) when the "
    "file decodes as UTF-8, else GB18030 (what Excel in China saves; a superset of GBK). Or "
    "any encoding Python knows, e.g. gb18030, big5, shift_jis, cp1252, utf-16.",
)


def _run(
    ctx: Context,
    file: Path,
    kind: str,
    register_missing: bool,
    cache_size: int,
    batch: int,
    encoding: str,
) -> None:
    from crm_es.app.csv_encoding import open_csv

    source = open_csv(file, encoding)  # a file that cannot be decoded stops here

    from crm_es.app.importer import count_rows, import_csv

    if source.note:
        click.echo(source.note, err=True)
    app = ctx.app_creating
    with (
        click.progressbar(
            length=count_rows(source), label=f"importing {kind}", file=sys.stderr
        ) as bar,
        app.command_cache.resized(cache_size),
    ):
        report = import_csv(
            app,
            source,
            kind,
            register_missing=register_missing,
            progress=bar.update,
            chunk_size=batch,
        )
    for error in report.errors:
        click.echo(f"{file} line {error.line}: {error.error}", err=True)
    emit_json(report)
    if report.rejected:
        sys.exit(1)


@click.group("import")
def import_group() -> None:
    """Import customers or purchases from CSV (a header row; UTF-8 or GB18030 detected, or
    --encoding). Safe to re-run.

    \b
    Example:
      crm-es import customers customers.csv
      crm-es import purchases purchases.csv --register-missing
    """


@import_group.command("customers")
@file_argument
@encoding_option
@cache_option
@batch_option
@pass_ctx
def import_customers(ctx: Context, file: Path, encoding: str, cache_size: int, batch: int) -> None:
    """Register the customers in FILE; rows whose external_ref exists count as unchanged."""
    _run(ctx, file, "customers", False, cache_size, batch, encoding)


@import_group.command("purchases")
@file_argument
@click.option(
    "--register-missing",
    is_flag=True,
    help="Register customers whose customer_ref is unknown (instead of rejecting).",
)
@encoding_option
@cache_option
@batch_option
@pass_ctx
def import_purchases(
    ctx: Context, file: Path, register_missing: bool, encoding: str, cache_size: int, batch: int
) -> None:
    """Record the purchases in FILE; rows already stored count as unchanged."""
    _run(ctx, file, "purchases", register_missing, cache_size, batch, encoding)


import_customers.help = (import_customers.help or "") + (
    "\n\n    Columns (only external_ref required): "
    + ", ".join(CUSTOMER_COLUMNS)
    + ". tags: separated by ';'. Any other column is an error."
    + "\n\n    \b\n    Example:\n      crm-es import customers customers.csv"
)
import_purchases.help = (import_purchases.help or "") + (
    "\n\n    Columns: "
    + ", ".join(PURCHASE_COLUMNS)
    + " (the first four required). occurred_at: an ISO date or date-time."
    + " Without order_id, a row is identified by its content. Any other column is an error."
    + "\n\n    \b\n    Example:\n      crm-es import purchases purchases.csv --register-missing"
)
