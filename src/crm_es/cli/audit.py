"""``crm-es audit verify|anchor|signing-key|export|import`` and ``crm-es erase``: tamper
evidence and privacy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import msgspec

from crm_es.cli.audit_access import access, subject
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
    help="Fail unless the digest of the stream heads equals DIGEST (from an earlier run).",
)
@click.option(
    "--anchors",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file of signed checkpoints (from `audit anchor`): prove each still holds.",
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The key that signed the checkpoints (default: the public half of "
    "$CRM_ES_SIGNING_KEY_FILE).",
)
@click.option(
    "--snapshots",
    type=click.IntRange(0, None),
    default=None,
    metavar="N",
    help="Replay only about N randomly chosen customers' snapshots (default: all).",
)
@pass_ctx
def verify(
    ctx: Context,
    customer: str | None,
    expect: str | None,
    anchors: Path | None,
    public_key: Path | None,
    snapshots: int | None,
) -> None:
    """Check everything the store holds against the hash chains of the events.

    Every stream's chain, every snapshot (sealed, of the stored event at its version, equal to
    the replay of its events), every key against the erasures, every command's idempotency
    record. With --anchors, also every signed checkpoint: that what it covered is still there
    unchanged and the store only grew since. Prints a JSON report (counts, problems, the
    digest of all stream heads) and exits 1 naming what is wrong.

    \b
    Example:
      crm-es audit verify --anchors anchors.jsonl --public-key audit.pub
      crm-es audit verify C-1 --expect 3f2a…
    """
    from crm_es.audit.checkpoint_verify import read_anchors, verify_anchored
    from crm_es.audit.verify import verify as verify_store

    if anchors is not None:
        if customer is not None:
            raise click.UsageError("--anchors checks the whole store: give no CUSTOMER")
        key = _public_key(public_key)
        signed = read_anchors(anchors.read_bytes(), str(anchors))
        report = verify_anchored(ctx.app, signed, key, snapshot_sample=snapshots)
    else:
        report = verify_store(ctx.app, customer, snapshot_sample=snapshots)
    emit_json(report)
    if report.problems:
        first = report.problems[0]
        more = len(report.problems) - 1
        where = (
            f"customer {first.customer_id} version {first.version}: " if first.customer_id else ""
        )
        raise TamperDetected(
            f"{where}{first.problem}"
            + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        )
    if expect is not None and expect.strip().lower() != report.digest:
        raise TamperDetected(
            f"digest {report.digest} does not match the expected {expect.strip()}: events were "
            "added, removed or changed since that digest was taken"
        )
    click.echo(f"ok: {report.events} events in {report.streams} streams verify", err=True)


def _public_key(path: Path | None) -> Any:
    from crm_es.audit.signing import load_public_key, load_signing_key

    if path is not None:
        return load_public_key(path)
    return load_signing_key(None).public_key()


@audit.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the signed checkpoint to this file (default: print it).",
)
@click.option(
    "--signing-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The Ed25519 private key (default: $CRM_ES_SIGNING_KEY_FILE).",
)
@pass_ctx
def anchor(ctx: Context, out: Path | None, signing_key: Path | None) -> None:
    """Take a signed checkpoint of everything recorded so far.

    It covers every stream, snapshot and idempotency record in one Merkle root, signed with a
    key kept outside the database; keep the line (append it to a file, send it to a notary).
    `audit verify --anchors FILE` later proves all of it unchanged, whatever was added since.

    \b
    Example:
      crm-es audit anchor --out anchors.jsonl
    """
    from crm_es.audit.checkpoints import anchor as take
    from crm_es.audit.signing import load_signing_key

    key = load_signing_key(signing_key)
    signed = take(ctx.app, key)
    line = msgspec.json.encode(signed) + b"\n"
    if out is None:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
    else:
        with out.open("ab") as f:
            f.write(line)
    cp = signed.checkpoint
    click.echo(
        f"checkpoint {cp.seq}: {cp.events} events, {cp.customers} customers, root {cp.root}",
        err=True,
    )


@audit.command("signing-key")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new private key (must not exist).",
)
def signing_key(out: Path) -> None:
    """Create an Ed25519 key for signing checkpoints; prints its public key.

    Keep the private key outside the database and its backups (CRM_ES_SIGNING_KEY_FILE), and
    give the public key to whoever verifies.

    \b
    Example:
      crm-es audit signing-key --out /etc/crm-es/signing.pem > audit.pub
    """
    from crm_es.audit.signing import create_signing_key, public_text

    sys.stdout.write(public_text(create_signing_key(out)) + "\n")


@audit.command("export")
@click.argument("customer", required=False)
@click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Only what had been recorded by T (a bare date = end of that day in the store's time "
    "zone).",
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
        from crm_es.store.files import replaced

        with replaced(out, private=True) as f:  # an earlier file stays if the export fails
            end = export_history(ctx.app, f.write, customer=customer, known_at=known_at)
    click.echo(
        f"exported {end.events} events of {end.streams} customers, digest {end.digest}", err=True
    )


@audit.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Verify the export's signed checkpoint with this key (default: the public half of "
    "$CRM_ES_SIGNING_KEY_FILE, when set).",
)
@pass_ctx
def import_export(ctx: Context, file: Path, public_key: Path | None) -> None:
    """Import an audit export, checked before anything is stored.

    Refuses, writing nothing, a file that is incomplete, whose chains break, whose events could
    not have been written by the service, whose checkpoint signature fails, or whose customers
    hold other events here. Re-running completes an interrupted import. Prints the counts and
    digest (equal to the export's).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm2 audit import crm-export.jsonl
    """
    import os

    from crm_es.audit.importer import import_history
    from crm_es.audit.signing import SIGNING_KEY_SETTING

    key = _public_key(public_key) if public_key or os.environ.get(SIGNING_KEY_SETTING) else None
    report = import_history(ctx.app_creating, file, public_key=key)
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
    if not reason.strip():  # irreversible: the history must say why
        raise click.BadParameter(
            "give the reason for the erasure (a ticket id)", param_hint="--reason"
        )
    result = ctx.app.erase_personal_data(
        customer=customer, requested_by=requested_by, legal_basis=legal_basis, reason=reason
    )
    out: dict[str, object] = {
        "ok": True,
        "customer_id": result.customer_id,
        "version": result.version,
        "erased": True,
        "completed_earlier_erasure": result.events == 0,
    }
    # A survivor's erasure leaves the records it absorbed by merges: their personal data stays
    # under their own keys (README "Merging customers"), so the operator is told to erase them.
    kept = _absorbed_not_erased(ctx, result.customer_id)
    if kept:
        out["absorbed_not_erased"] = kept
        out["note"] = (
            f"this customer absorbed {len(kept)} customer(s) by a merge whose personal data is "
            "kept under their own key: erase them too to forget the person"
        )
    emit_json(out)


def _absorbed_not_erased(ctx: Context, customer_id: UUID) -> list[dict[str, str | None]]:
    """The customers merged into ``customer_id`` that still hold personal data (ids and refs
    only: nothing personal is read)."""
    state = ctx.app.store.load(customer_id)
    kept = []
    for absorbed in state.absorbed if state is not None else []:
        duplicate = ctx.app.store.load(absorbed)
        if duplicate is not None and not duplicate.erased:
            kept.append({"customer_id": str(absorbed), "external_ref": duplicate.external_ref})
    return kept


audit.add_command(access)
audit.add_command(subject)
