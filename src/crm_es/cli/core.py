"""Core commands: ``init``, ``exec``, ``show``, ``history``."""

from __future__ import annotations

import hashlib
import sys
from typing import IO

import click
import msgspec

from crm_es.app.views import customer_view
from crm_es.cli.render import emit, format_table
from crm_es.cli.shared import Context, emit_json
from crm_es.domain.commands import decode_command
from crm_es.domain.errors import CrmError

pass_ctx = click.make_pass_decorator(Context)


def auto_command_id(origin: str, line_number: int, line: bytes) -> str:
    """A command id that is the same whenever the same line of the same input runs again."""
    digest = hashlib.sha256(line).hexdigest()[:32]
    return f"exec:{origin[-60:]}:{line_number}:{digest}"


@click.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create the store's tables (safe to run again).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm init
    """
    app = ctx.app  # constructing the application creates any missing tables
    emit_json({"ok": True, "store": app.store.config.kind, "url": ctx.db_url})


@click.command("exec")
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--auto-ids/--no-auto-ids",
    default=True,
    show_default=True,
    help="Give lines without a command_id a deterministic one, so a re-run appends nothing.",
)
@pass_ctx
def exec_commands(ctx: Context, source: IO[bytes], auto_ids: bool) -> None:
    """Run JSON Lines commands from SOURCE (a file, or - for stdin).

    Prints one JSON result per input line; a bad line stores nothing and the following lines
    still run. Exits 1 if any line failed.

    Re-running the same input is safe: a line without a command_id gets a deterministic one
    (exec:SOURCE:LINE:HASH-OF-LINE), and a command whose id was already done returns its
    original result with "duplicate": true and appends nothing. Give explicit command_ids to
    repeat an identical command on purpose (or pass --no-auto-ids).

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
            command = decode_command(line)
            if auto_ids and command.command_id is None:
                command = msgspec.structs.replace(
                    command, command_id=auto_command_id(origin, number, line)
                )
            result = app.execute_validated(command)
        except (msgspec.ValidationError, msgspec.DecodeError, CrmError) as e:
            failed += 1
            click.echo(f"{origin} line {number}: {e}", err=True)
            emit_json({"ok": False, "line": number, "error": str(e)})
            continue
        out = {"ok": True, "customer_id": result.customer_id, "version": result.version}
        emit_json({**out, "duplicate": True} if result.duplicate else out)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("customer")
@click.option("--version", "version", type=int, default=None, help="State at this stream version.")
@click.option(
    "--as-of",
    default=None,
    metavar="D",
    help="Business time: only events that occurred by D (a bare date = end of day, UTC).",
)
@click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Knowledge time: only events recorded by T (a bare date = end of day, UTC).",
)
@pass_ctx
def show(ctx: Context, customer: str, version: int | None, as_of: str | None,
         known_at: str | None) -> None:  # fmt: skip
    """Print CUSTOMER's state (UUID or external ref) as one JSON object: now, or as the world
    stood at business date D (--as-of), as recorded by T (--known-at), or both.

    \b
    Example:
      crm-es show C-1 --as-of 2026-01-31 --known-at 2026-02-01T09:00:00+08:00
    """
    if as_of is None and known_at is None:
        state = ctx.app.get_customer(customer, version=version)
    else:
        state = ctx.app.get_customer_as_of(
            customer, as_of=as_of, known_at=known_at, version=version
        )
    emit_json(customer_view(state))


@click.command()
@click.argument("customer")
@click.option(
    "--since",
    default=None,
    metavar="T",
    help="Only events recorded at or after T (a bare date = start of that day, UTC).",
)
@click.option(
    "--until",
    default=None,
    metavar="T",
    help="Only events recorded at or before T (a bare date = end of that day, UTC).",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="NAME",
    help="Only events of this type, e.g. PurchaseRecorded (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table", "csv"]),
    default="json",
    show_default=True,
    help="JSON Lines for programs, a table for people, or CSV.",
)
@pass_ctx
def history(ctx: Context, customer: str, since: str | None, until: str | None,
            types: tuple[str, ...], fmt: str) -> None:  # fmt: skip
    """Print the events of CUSTOMER, oldest first: JSON Lines with the envelope and a one-line
    summary, or a table of version, recorded and business time, actor, reason, correlation id
    and summary. --since/--until filter on recorded (knowledge) time.

    \b
    Example:
      crm-es history C-1 --type PurchaseRecorded --since 2026-01-01 --format table
    """
    from crm_es.audit.history import filtered_history, history_line, history_row, summarize

    events = filtered_history(ctx.app, customer, since=since, until=until, types=types)
    if fmt == "json":
        out = sys.stdout.buffer
        for event in events:
            out.write(history_line(event, summarize(event)) + b"\n")
        out.flush()
        return
    rows = [history_row(e) for e in events]
    if fmt == "table":
        sys.stdout.write(format_table(rows, max_width=72))  # summaries need the room
    else:
        emit(rows, rows, fmt)
