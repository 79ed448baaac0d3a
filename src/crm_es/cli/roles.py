"""``crm-es roles …``: the PostgreSQL roles that enforce the service's policy in the database."""

from __future__ import annotations

import click

from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)


@click.group()
def roles() -> None:
    """Database roles for the service's roles (PostgreSQL only).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm roles init
    """


@roles.command("init")
@click.option(
    "--prefix",
    default="",
    metavar="P",
    help="Name the roles P + crm_<role> (e.g. acme_crm_staff), to keep two installations of "
    "one PostgreSQL cluster apart; the first one given is kept. [default: none]",
)
@pass_ctx
def init_roles(ctx: Context, prefix: str) -> None:
    """Create a NOLOGIN group role per service role (crm_admin, crm_manager, crm_staff,
    crm_analyst, crm_auditor, crm_privacy_officer, crm_integration) and grant each what it
    may do on this store's tables, so a direct connection gets no more than the service
    allows: events can be inserted but never updated, deleted or truncated (a trigger refuses
    it to everyone), keys are read only through a function that checks the role and logs the
    read, erasure only by privacy officers and admins, analysts see read models only.

    Run it as the store's owner with CREATEROLE (or a superuser), after the store was created;
    it is safe to run again. Give each person a login in one group; commands run with that
    login act as its principal (pg:<login>, a staff member owning staff:<login>). An SQLite
    store is one user: the file is the boundary and the service's policy applies. Prints a
    JSON summary.

    \b
    Example:
      crm-es --db 'postgresql://crm_owner@db/crm?schema=shop' roles init
      psql -c 'CREATE ROLE li LOGIN IN ROLE crm_staff'   # then \\password li
      crm-es --db 'postgresql://li@db/crm?schema=shop' show C-1
    """
    from crm_es.store.pg_roles import init_roles as run_init
    from crm_es.store.url import parse_store_url

    emit_json(run_init(parse_store_url(ctx.db_url), prefix))
