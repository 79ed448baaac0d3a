"""``crm-es``: the command line. Commands are thin: parse -> one app call -> render.

Data goes to stdout (JSON by default), progress and logs to stderr; a user mistake prints
``Error: …`` and exits 1 without a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from crm_es.cli.audit import audit, erase
from crm_es.cli.core import exec_commands, history, init, show
from crm_es.cli.customers import customers
from crm_es.cli.demo import demo
from crm_es.cli.imports import import_group
from crm_es.cli.maintenance import maintain
from crm_es.cli.projections import projections
from crm_es.cli.reports import report
from crm_es.cli.roles import roles
from crm_es.cli.settings import settings
from crm_es.cli.shared import Context, CrmGroup
from crm_es.cli.users import users
from crm_es.store.url import DEFAULT_URL, URL_ENV_VAR


@click.group(cls=CrmGroup)
@click.option(
    "--db",
    "db_url",
    envvar=URL_ENV_VAR,
    default=DEFAULT_URL,
    show_default=True,
    help=f"Store URL: sqlite:///FILE or postgresql://USER@HOST/DB[?schema=S] (env {URL_ENV_VAR}).",
)
@click.version_option(package_name="crm-es")
@click.pass_context
def main(ctx: click.Context, db_url: str) -> None:
    """crm-es: the event-sourced CRM core.

    \b
    Example:
      crm-es init
      echo '{"type":"register_customer","external_ref":"C-1","name":"王芳"}' | crm-es exec -
      crm-es show C-1
    """
    ctx.obj = Context(db_url)
    ctx.call_on_close(ctx.obj.close)


for command in (
    init,
    exec_commands,
    show,
    history,
    projections,
    report,
    customers,
    demo,
    import_group,
    maintain,
    audit,
    erase,
    roles,
    users,
    settings,
):
    main.add_command(command)


def run(args: list[str] | None = None) -> Any:
    return main.main(args=args, prog_name="crm-es")
