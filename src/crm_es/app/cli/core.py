"""Core commands: ``init``, ``exec``, ``show``, ``history``."""

from __future__ import annotations

import sys
from typing import IO

import click
import msgspec

from crm_es.app.cli.shared import Context, emit_json
from crm_es.app.views import customer_view, event_record
from crm_es.domain.commands import decode_command
from crm_es.domain.errors import CrmError

pass_ctx = click.make_pass_decorator(Context)


@click.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create the store's tables (safe to run again).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm init
    """
    app = ctx.app  # constructing the application creates any missing tables
    emit_json({"ok": True, "store": app.store.kind, "url": ctx.db_url})


@click.command("exec")
@click.argument("source", type=click.File("rb"), default="-")
@pass_ctx
def exec_commands(ctx: Context, source: IO[bytes]) -> None:
    """Run JSON Lines commands from SOURCE (a file, or - for stdin).

    Prints one JSON result per input line; a bad line stores nothing and the following lines
    still run. Exits 1 if any line failed.

    \b
    Example:
      echo '{"type":"grant_points","customer":"C-1","points":100}' | crm-es exec -
    """
    app = ctx.app
    origin = getattr(source, "name", "<stdin>")
    failed = 0
    for number, raw in enumerate(source, start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            result = app.execute_validated(decode_command(line))
        except (msgspec.ValidationError, msgspec.DecodeError, CrmError) as e:
            failed += 1
            click.echo(f"{origin} line {number}: {e}", err=True)
            emit_json({"ok": False, "line": number, "error": str(e)})
            continue
        emit_json({"ok": True, "customer_id": result.customer_id, "version": result.version})
    if failed:
        sys.exit(1)


@click.command()
@click.argument("customer")
@click.option("--version", "version", type=int, default=None, help="State at this stream version.")
@pass_ctx
def show(ctx: Context, customer: str, version: int | None) -> None:
    """Print CUSTOMER's current state (UUID or external ref) as one JSON object.

    \b
    Example:
      crm-es show C-1
    """
    emit_json(customer_view(ctx.app.get_customer(customer, version=version)))


@click.command()
@click.argument("customer")
@pass_ctx
def history(ctx: Context, customer: str) -> None:
    """Print every event of CUSTOMER as JSON Lines, envelope included.

    \b
    Example:
      crm-es history C-1
    """
    for event in ctx.app.history(customer):
        emit_json(event_record(event))
