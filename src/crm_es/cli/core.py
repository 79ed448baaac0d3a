"""Core commands: ``init``, ``exec``, ``show``, ``history``."""

from __future__ import annotations

import hmac
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Final

import click
import msgspec

from crm_es.cli.render import emit, format_mapping, format_option, format_table, resolved_format
from crm_es.cli.shared import Context, emit_json
from crm_es.domain.commands import decode_command
from crm_es.domain.errors import CrmError

pass_ctx = click.make_pass_decorator(Context)


# A command is a few KiB at most (texts are bounded); a longer line is refused without being
# held in memory whole.
MAX_LINE_BYTES: Final = 1 << 20


def _lines(source: IO[bytes]) -> Iterator[bytes | None]:
    """The input's lines; None for a line longer than MAX_LINE_BYTES (read past, not kept)."""
    while True:
        line = source.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line


def file_identity(source: IO[bytes]) -> str | None:
    """What tells this input file from any other: its real path and its inode (None for a pipe
    or stdin, which has none: the same lines fed twice are two inputs)."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or name == "<stdin>":
        return None
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return f"{os.path.realpath(name)}|{info.st_dev}|{info.st_ino}"


def auto_command_id(key: bytes, identity: str, line_number: int, line: bytes) -> str:
    """A command id that is the same whenever the same line of the same file runs again, and
    reveals nothing of the line (keyed with a secret of the store)."""
    message = f"{identity}|{line_number}|".encode() + line
    return "exec:" + hmac.digest(key, message, "sha256").hex()[:40]


@click.command()
@click.option(
    "--timezone",
    "timezone",
    default=None,
    metavar="ZONE",
    help="The store's time zone, an IANA name such as Asia/Shanghai: purchase days, months, "
    "birthdays, 'due today' and bare dates are cut in it. Kept in the store; it cannot change "
    "once events are stored. [default: UTC for a new store]",
)
@pass_ctx
def init(ctx: Context, timezone: str | None) -> None:
    """Create the store's tables (safe to run again) and keep its time zone.

    \b
    Examples:
      crm-es init --timezone Asia/Shanghai
      crm-es --db postgresql://postgres@127.0.0.1/crm init
    """
    app = ctx.app_creating  # creates any missing tables
    store = app.store
    if timezone is not None:
        store.set_timezone(timezone)
    emit_json(
        {
            "ok": True,
            "store": store.config.kind,
            "url": store.config.redacted_url(),  # never a password
            "master_key_file": store.master_key_source,
            "timezone": store.timezone_name,
        }
    )


@click.command("exec")
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--auto-ids/--no-auto-ids",
    default=None,
    help="Give lines without a command_id a deterministic one, so a re-run appends nothing "
    "[default: on for a file, off for stdin].",
)
@pass_ctx
def exec_commands(ctx: Context, source: IO[bytes], auto_ids: bool | None) -> None:
    """Run JSON Lines commands from SOURCE (a file, or - for stdin).

    Prints one JSON result per input line; a bad line stores nothing and the following lines
    still run. Exits 1 if any line failed.

    Re-running the same file is safe: a line without a command_id gets a deterministic one
    (from the file's path and inode, the line number and the line), and a command whose id was
    already done returns its original result with "duplicate": true and appends nothing. Lines
    read from stdin get no automatic id unless --auto-ids is given (the same lines piped twice
    are two inputs). Give explicit command_ids to repeat an identical command on purpose.

    \b
    Example:
      echo '{"type":"grant_points","customer":"C-1","points":100}' | crm-es exec -
    """
    app = ctx.app_creating
    origin = getattr(source, "name", "<stdin>")
    identity = file_identity(source)
    if auto_ids is None:
        auto_ids = identity is not None
    if auto_ids and identity is None:  # asked for on stdin: the stream's name is all there is
        identity = origin
    key = app.store.secrets.automatic_ids_key
    failed = 0
    for number, raw in enumerate(_lines(source), start=1):
        line = raw.strip() if raw is not None else b"?"
        if not line or line.startswith(b"#"):
            continue
        try:
            if raw is None:
                raise CrmError(f"line is longer than {MAX_LINE_BYTES // 1024} KiB: not a command")
            command = decode_command(line)
            if auto_ids and command.command_id is None:
                assert identity is not None
                command = msgspec.structs.replace(
                    command, command_id=auto_command_id(key, identity, number, line)
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
    help="Business time: only events that occurred by D (a bare date = end of that day in the "
    "store's time zone).",
)
@click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Knowledge time: only events recorded by T (a bare date = end of that day in the "
    "store's time zone).",
)
@format_option
@pass_ctx
def show(ctx: Context, customer: str, version: int | None, as_of: str | None,
         known_at: str | None, fmt: str | None) -> None:  # fmt: skip
    """Print CUSTOMER's state (UUID or external ref): now, or as the world stood at business
    date D (--as-of), as recorded by T (--known-at), or both. Readable lines on a terminal,
    one JSON object otherwise.

    \b
    Example:
      crm-es show C-1 --as-of 2026-01-31 --known-at 2026-02-01T09:00:00+08:00
    """
    view = ctx.app.view(customer, as_of=as_of, known_at=known_at, version=version)
    fmt = resolved_format(fmt)
    if fmt == "json":
        emit_json(view)
    elif fmt == "csv":
        raise click.UsageError("show has no CSV form: use --format json or table")
    else:
        click.echo(format_mapping(view), nl=False)


@click.command()
@click.argument("customer")
@click.option(
    "--since",
    default=None,
    metavar="T",
    help="Only events recorded at or after T (a bare date = start of that day in the store's "
    "time zone).",
)
@click.option(
    "--until",
    default=None,
    metavar="T",
    help="Only events recorded at or before T (a bare date = end of that day in the store's "
    "time zone).",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="NAME",
    help="Only events of this type, e.g. PurchaseRecorded (repeatable).",
)
@format_option
@pass_ctx
def history(ctx: Context, customer: str, since: str | None, until: str | None,
            types: tuple[str, ...], fmt: str | None) -> None:  # fmt: skip
    """Print the events of CUSTOMER, oldest first: JSON Lines with the envelope and a one-line
    summary, or a table of version, recorded and business time, actor, reason, correlation id
    and summary. --since/--until filter on recorded (knowledge) time.

    \b
    Example:
      crm-es history C-1 --type PurchaseRecorded --since 2026-01-01 --format table
    """
    from crm_es.audit.history import filtered_history, history_line, history_row, summarize

    events = filtered_history(ctx.app, customer, since=since, until=until, types=types)
    fmt = resolved_format(fmt)
    if fmt == "json":
        out = sys.stdout.buffer
        for event in events:
            out.write(history_line(event, summarize(event)) + b"\n")
        out.flush()
        return
    rows = [history_row(e) for e in events]
    if fmt == "table":
        # What happened first, where a terminal has room; the rest as the width allows.
        first = ["version", *(c for c in rows[0] if c.startswith("occurred")), "type", "actor",
                 "summary"] if rows else []  # fmt: skip
        columns = first + [c for c in (rows[0] if rows else {}) if c not in first]
        sys.stdout.write(format_table(rows, max_width=48, columns=columns, fit=120))
    else:
        emit(rows, rows, fmt)
