"""``crm-es users …``: who holds which role, and every change of it in the grants log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import msgspec

from crm_es.cli.render import emit, format_option
from crm_es.cli.shared import Context, emit_json

if TYPE_CHECKING:
    from crm_es.app.users import Users

pass_ctx = click.make_pass_decorator(Context)

# NAME and --role are checked here rather than by click (required=True): a missing one is the
# same clear usage error, and the hostile-CLI walk can fill the parameters it knows.
name_argument = click.argument("name", required=False)
_ROLES_HELP = "admin, manager, staff, analyst, auditor, privacy_officer or integration."
roles_option = click.option("--role", "roles", multiple=True, metavar="R",
                            help=f"A role (repeat for more): {_ROLES_HELP}")  # fmt: skip
role_option = click.option(
    "--role", "role", default=None, metavar="R", help=f"The role: {_ROLES_HELP}"
)


def _users(ctx: Context) -> Users:
    from crm_es.app.users import Users

    return Users(ctx.app)


def _given(name: str | None, roles: tuple[str, ...] | str | None = "not asked") -> str:
    """NAME, and a role when the command takes one: a usage error when missing."""
    if name is None:
        raise click.UsageError("give the user's NAME")
    if not roles:
        raise click.UsageError("give a role with --role")
    return name


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


@click.group()
def users() -> None:
    """Users and their roles (权限管理). Every change is a row of the hash-chained grants log,
    listed by `crm-es audit access --grants` and checked by `crm-es audit verify`; only an
    admin changes grants.

    On PostgreSQL a user is also a login role (its name in lower case, with : . - as _), put
    in the group roles of `crm-es roles init` (run it first); run these as the store's owner
    with CREATEROLE. What a database role cannot hold (a staff member's owner id, a manager's
    team, an auditor's PII grant, an integration's command types) is kept in the grants log.

    \b
    Example:
      crm-es users add li --role staff --owner staff:li
      crm-es users list
    """


@users.command("add")
@name_argument
@roles_option
@click.option("--owner", default=None, metavar="O",
              help="The owner id a staff member or manager holds customers as "
              "[default: staff: + the name's last part].")  # fmt: skip
@click.option("--team", default=None, metavar="O,...",
              help="A manager's team: the owner ids it leads, comma-separated.")  # fmt: skip
@click.option("--pii", is_flag=True, help="An auditor sees personal data in clear.")
@click.option("--commands", default=None, metavar="T,...",
              help="The command types an integration may send, comma-separated.")  # fmt: skip
@pass_ctx
def add(
    ctx: Context,
    name: str | None,
    roles: tuple[str, ...],
    owner: str | None,
    team: str | None,
    pii: bool,
    commands: str | None,
) -> None:
    """Add user NAME with one or more roles; prints the user's grants as JSON.

    Names are 1-63 letters, digits or _ . : - (e.g. li, user:li, api:shop).

    \b
    Example:
      crm-es users add li --role staff --owner staff:li
      crm-es users add wang --role manager --team staff:li,staff:wu
      crm-es users add api:shop --role integration --commands record_purchase,grant_points
    """
    user = _users(ctx).add(
        _given(name, roles), roles, owner=owner, team=_split(team) or (), pii=pii,
        command_types=_split(commands) or (),
    )  # fmt: skip
    emit_json(msgspec.to_builtins(user))


@users.command("grant")
@name_argument
@role_option
@click.option("--owner", default=None, metavar="O", help="Set the owner id.")
@click.option("--team", default=None, metavar="O,...", help="Set a manager's team.")
@click.option("--pii/--no-pii", default=None, help="Set an auditor's PII grant.")
@click.option("--commands", default=None, metavar="T,...",
              help="Set an integration's command types.")  # fmt: skip
@pass_ctx
def grant(
    ctx: Context,
    name: str | None,
    role: str | None,
    owner: str | None,
    team: str | None,
    pii: bool | None,
    commands: str | None,
) -> None:
    """Give user NAME a role; the options given set the user's attributes (a role held
    already: only those). Prints the user's grants as JSON.

    \b
    Example:
      crm-es users grant li --role manager --team staff:li,staff:wu
    """
    user = _users(ctx).grant(
        _given(name, role), role or "", owner=owner, team=_split(team), pii=pii,
        command_types=_split(commands),
    )  # fmt: skip
    emit_json(msgspec.to_builtins(user))


@users.command("revoke")
@name_argument
@role_option
@pass_ctx
def revoke(ctx: Context, name: str | None, role: str | None) -> None:
    """Take a role from user NAME, with the attributes only it used (a manager's team, an
    auditor's PII grant, an integration's command types); prints the user's grants as JSON.

    \b
    Example:
      crm-es users revoke li --role manager
    """
    user = _users(ctx).revoke(_given(name, role), role or "")
    emit_json(msgspec.to_builtins(user))


@users.command("remove")
@name_argument
@pass_ctx
def remove(ctx: Context, name: str | None) -> None:
    """Remove user NAME (on PostgreSQL, drop its login); the history of its grants stays.

    \b
    Example:
      crm-es users remove li
    """
    user = _given(name)
    _users(ctx).remove(user)
    emit_json({"removed": user})


@users.command("list")
@format_option
@pass_ctx
def list_users(ctx: Context, fmt: str | None) -> None:
    """List the users and their grants now: a table on a terminal, JSON otherwise.

    \b
    Example:
      crm-es users list --format table
    """
    found = msgspec.to_builtins(_users(ctx).list())
    emit(found, [_row(user) for user in found], fmt)


def _row(user: dict[str, Any]) -> dict[str, Any]:
    """A user as one flat row (lists joined)."""
    joined = {k: ",".join(v) for k, v in user.items() if isinstance(v, list)}
    return {**user, **joined}
