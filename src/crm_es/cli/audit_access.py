"""``crm-es audit access`` and ``crm-es audit subject``: who read whose personal data, and a
data subject's access request."""

from __future__ import annotations

from typing import Any

import click
import msgspec

from crm_es.cli.render import emit, format_mapping, format_option, resolved_format
from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)


@click.command("access")
@click.argument("customer", required=False)
@click.option("--by", "by", metavar="PRINCIPAL", default=None,
              help="Only the reads (grant changes) by this principal (e.g. user:li).")  # fmt: skip
@click.option("--grants", is_flag=True,
              help="List the changes of grants (crm-es users) instead of reads.")  # fmt: skip
@click.option("--user", "user", metavar="NAME", default=None,
              help="With --grants: only the changes of this user's grants.")  # fmt: skip
@format_option
@pass_ctx
def access(
    ctx: Context, customer: str | None, by: str | None, grants: bool, user: str | None,
    fmt: str | None,
) -> None:  # fmt: skip
    """List the reads of personal data: of CUSTOMER (UUID or external ref), by a principal
    (--by), or both; oldest first. With --grants, every change of who holds which role
    (add, grant, revoke, remove), of a --user, by a principal (--by), or all.

    Each read names who, when, the customer, which fields, the action (show, history, export,
    subject) and the purpose given. The log is append-only and hash-chained (`audit verify`
    checks it) and covered by the signed checkpoints; it keeps its rows after an erasure (they
    hold no personal values). The grants log is hash-chained and checked by `audit verify` too.

    \b
    Example:
      crm-es audit access C-1
      crm-es audit access --by user:li --format csv > reads.csv
      crm-es audit access --grants --user li
    """
    if grants or user is not None:
        _grants(ctx, customer, by, grants, user, fmt)
        return
    if customer is None and by is None:
        raise click.UsageError("give a CUSTOMER, --by PRINCIPAL, or both (or --grants)")
    from crm_es.domain.ids import customer_id_for_ref

    customer_id = None if customer is None else customer_id_for_ref(customer)
    ctx.app.check("access_log")  # the policy's: privacy officers, auditors, admins
    entries = ctx.app.store.access_log.entries(customer_id=customer_id, by=by)
    data = msgspec.to_builtins(entries)
    emit(data, [_row(entry) for entry in data], fmt)


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    """A read as one flat row (the field names joined)."""
    return {**entry, "fields": ",".join(entry["fields"])}


def _grants(
    ctx: Context, customer: str | None, by: str | None, grants: bool, user: str | None,
    fmt: str | None,
) -> None:  # fmt: skip
    """The grant changes (``--grants``), oldest first."""
    if customer is not None or not grants:
        raise click.UsageError("--grants lists users' grants, not a CUSTOMER's reads; --user "
                               "goes with --grants")  # fmt: skip
    from crm_es.app.users import Users

    changes = msgspec.to_builtins(Users(ctx.app).changes(user=user, by=by))
    rows = [{k: ",".join(v) if isinstance(v, list) else v for k, v in c.items()} for c in changes]
    emit(changes, rows, fmt)


@click.command("subject")
@click.argument("customer")
@click.option(
    "--purpose",
    default=None,
    help="Why it is read, recorded in the access log (e.g. the request's ticket).",
)
@format_option
@pass_ctx
def subject(ctx: Context, customer: str, purpose: str | None, fmt: str | None) -> None:
    """Answer a data subject's access request (PIPL art. 45, GDPR art. 15) for CUSTOMER: the
    personal data held (the current state, every personal value in its history, what read
    models copied) and every read of it.

    The answer is itself a read of personal data: it is recorded in the access log (action
    "subject") and listed among the reads. Readable lines on a terminal, one JSON object
    otherwise. The output holds personal data: hand it to the data subject only.

    \b
    Example:
      crm-es audit subject C-1 --purpose "ticket 4711" --format json > c1-access-request.json
    """
    from crm_es.app.subject_access import subject_access

    fmt = resolved_format(fmt)
    if fmt == "csv":
        raise click.UsageError("subject has no CSV form: use --format json or table")
    answer = subject_access(ctx.app, customer, purpose=purpose)
    if fmt == "json":
        emit_json(answer)
        return
    reads = [_row(entry) for entry in answer.pop("reads")]
    click.echo(format_mapping(answer), nl=False)
    click.echo(f"reads ({len(reads)}):")
    emit(reads, reads, "table")
