"""``crm-es audit verify|export|import`` and ``crm-es erase``: tamper evidence and privacy."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_es.cli.shared import Context, emit_json
from crm_es.domain.errors import TamperDetected

pass_ctx = click.make_pass_decorator(Context)


@click.group()
def audit() -> None:
    """Tamper evidence and export: verify the hash chains, export and import full histories.

    \b
    Example:
      crm-es audit verify > verify.json
      crm-es audit verify --expect "$(jq -r .digest verify.json)"
    """


@audit.command()
@click.argument("customer", required=False)
@click.option(
    "--expect",
    metavar="DIGEST",
    default=None,
    help="Fail unless the digest of the stream heads equals DIGEST (from an earlier run): "
    "catches events removed from the end of a stream, which leave a valid chain.",
)
@pass_ctx
def verify(ctx: Context, customer: str | None, expect: str | None) -> None:
    """Recompute the hash chain of every stream (or of CUSTOMER) and check every snapshot.

    Prints a JSON report: counts, problems and the digest of all stream heads (sha256 over the
    sorted customer id, head version and head hash). Exits 1 naming the customer and version of
    the first broken link if any stored byte was altered, an event deleted or events reordered,
    or if --expect does not match.

    \b
    Example:
      crm-es audit verify
      crm-es audit verify C-1 --expect 3f2a…
    """
    from crm_es.audit.verify import verify as verify_store

    report = verify_store(ctx.app, customer)
    emit_json(report)
    if report.problems:
        first = report.problems[0]
        more = len(report.problems) - 1
        raise TamperDetected(
            f"customer {first.customer_id} version {first.version}: {first.problem}"
            + (f" (and {more} more stream{'s' if more > 1 else ''} with problems)" if more else "")
        )
    if expect is not None and expect.strip().lower() != report.digest:
        raise TamperDetected(
            f"digest {report.digest} does not match the expected {expect.strip()}: events were "
            "added, removed or changed since that digest was taken"
        )
    click.echo(f"ok: {report.events} events in {report.streams} streams verify", err=True)


@audit.command("export")
@click.argument("customer", required=False)
@click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Only what had been recorded by T (a bare date = end of that day, UTC).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@pass_ctx
def export(ctx: Context, customer: str | None, known_at: str | None, out: Path | None) -> None:
    """Write the full history (of CUSTOMER, or of every customer) as JSON Lines.

    Each event line has the readable event (envelope, fields, summary) and the stored row
    (topic, base64 state) for a byte-identical import; each customer's data key comes before
    its events. The file holds personal data and its keys: handle it as personal data.

    \b
    Example:
      crm-es audit export --out crm-export.jsonl
      crm-es audit export C-1 --known-at 2026-01-31
    """
    from crm_es.audit.export import export_history

    if out is None:
        end = export_history(ctx.app, sys.stdout.buffer.write, customer=customer, known_at=known_at)
        sys.stdout.buffer.flush()
    else:
        with out.open("wb") as f:
            end = export_history(ctx.app, f.write, customer=customer, known_at=known_at)
    click.echo(
        f"exported {end.events} events of {end.streams} customers, digest {end.digest}", err=True
    )


@audit.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def import_export(ctx: Context, file: Path) -> None:
    """Import an audit export into a store that has none of its customers yet.

    Checks the whole file first (every chain, the end line's digest) and refuses, writing
    nothing, if it is incomplete or altered or if any of its customers already exists here.
    Prints the imported counts and digest (equal to the export's).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm2 audit import crm-export.jsonl
    """
    from crm_es.audit.export import import_history

    report = import_history(ctx.app, file)
    emit_json(report)
    if not report.matches_export:
        raise TamperDetected(f"imported digest {report.digest} differs from the export's")


@click.command()
@click.argument("customer")
@click.option("--reason", required=True, help="Why (recorded on the event), e.g. a ticket id.")
@click.option(
    "--requested-by",
    default="data-subject",
    show_default=True,
    help="Who asked for the erasure.",
)
@click.option("--legal-basis", default=None, help="e.g. 'GDPR Art. 17' or 'PIPL Art. 47'.")
@pass_ctx
def erase(
    ctx: Context, customer: str, reason: str, requested_by: str, legal_basis: str | None
) -> None:
    """Crypto-shred CUSTOMER's personal data: record PersonalDataErased, then delete the key.

    History stays complete and verifiable; personal fields read as [erased] everywhere. If an
    earlier erase was interrupted after its event, running it again deletes the key.

    \b
    Example:
      crm-es erase C-1 --reason "ticket 4711" --requested-by customer --legal-basis "PIPL Art. 47"
    """
    result = ctx.app.erase_personal_data(
        customer=customer, requested_by=requested_by, legal_basis=legal_basis, reason=reason
    )
    emit_json(
        {
            "ok": True,
            "customer_id": result.customer_id,
            "version": result.version,
            "erased": True,
            "completed_earlier_erasure": result.events == 0,
        }
    )
