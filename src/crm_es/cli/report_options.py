"""What every ``crm-es report …`` command shares: the date, rule and selection options, and
how a report is presented (selected, ordered, cut, in the format asked, with the names the
reader may see). The commands are in :mod:`crm_es.cli.reports` and the modules it gathers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.render import emit, format_table, resolved_format
from crm_es.cli.shared import Context, FiniteRange
from crm_es.cli.table_view import (
    TABLE_CELL,
    TABLE_LIMIT,
    TABLE_SORT,
    TABLE_WIDTH,
    UNCUT_TABLES,
    Selection,
    check_sort,
    order_rows,
    select,
    table_columns,
    with_names,
)

pass_ctx = click.make_pass_decorator(Context)

as_of_option = click.option(
    "--as-of",
    default=None,
    metavar="D",
    help="Business time: count only what occurred up to D (a bare date = end of that day in the "
    "store's time zone). "
    "Default: now.",
)
known_at_option = click.option(
    "--known-at",
    default=None,
    metavar="T",
    help="Knowledge time: count only what had been recorded by T. Default: now.",
)
refresh_option = click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Bring the read models up to date first (off when a follower keeps them fresh).",
)


_DEFAULT_RULE = ChurnRule()
rule_options = [
    click.option(
        "--k",
        type=FiniteRange(0.5, 100),
        default=_DEFAULT_RULE.k,
        show_default=True,
        help="Churn rule: churned after k x the median gap between purchase days...",
    ),
    click.option(
        "--floor-days",
        type=click.IntRange(1, 3650),
        default=_DEFAULT_RULE.floor_days,
        show_default=True,
        help="...or after this many silent days, whichever is longer.",
    ),
    click.option(
        "--at-risk-share",
        type=FiniteRange(0.05, 1.0),
        default=_DEFAULT_RULE.at_risk_share,
        show_default=True,
        help="At risk after this share of the churn threshold.",
    ),
]


time_unit_option = click.option(
    "--time-unit",
    type=click.Choice(["day", "week"]),
    default="week",
    show_default=True,
    help="Time unit of the BG/NBD fit.",
)


def owner_option(what: str) -> Callable[[Any], Any]:
    return click.option(
        "--owner", default=None, metavar="STAFF", help=f"Only {what} of this owner "
        "(e.g. staff:wang; '(unassigned)' for none)."
    )  # fmt: skip


def segment_option(what: str) -> Callable[[Any], Any]:
    return click.option("--segment", default=None, metavar="NAME", help=f"Only customers {what}.")


sort_option = click.option(
    "--sort",
    default=None,
    metavar="COLUMN",
    help="Order the rows by this column (-COLUMN: descending); numbers by value.",
)
limit_option = click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help=f"At most this many rows (0: all). [default: {TABLE_LIMIT} in a table, all otherwise]",
)
columns_option = click.option(
    "--columns",
    default=None,
    metavar="A,B,…|all",
    help=f"The table's columns (default: the most useful that fit {TABLE_WIDTH} characters).",
)
SELECTION_OPTIONS = ("owner", "segment", "sort", "limit", "columns")


def _name_lookup(ctx: Context, rows: list[dict[str, Any]]) -> Callable[[str], str | None]:
    """The names of the listed customers for a person reading the table, as the principal may
    see them ([erased] after an erasure; none for a customer that is not the reader's); the
    read is written to the access log."""
    from uuid import UUID

    ids = list(dict.fromkeys(UUID(str(r["customer_id"])) for r in rows if r.get("customer_id")))
    names = ctx.app.names(ids, purpose="report table") if ids else {}
    listed = {str(i) for i in ids}  # rows about no customer (totals beside them) have no name
    return lambda customer_id: names.get(UUID(customer_id)) if customer_id in listed else None


def present(ctx: Context, name: str, data: Any, fmt: str | None, options: dict[str, Any]) -> None:
    """The report selected, ordered and cut as asked, in the format asked (or the TTY's)."""
    from crm_es.reports.api import TABLE_ROWS

    selection = Selection(
        owner=options.pop("owner", None),
        segment=options.pop("segment", None),
        sort=options.pop("sort", None),
        limit=options.pop("limit", None),
    )
    columns = options.pop("columns", None)
    fmt = resolved_format(fmt)
    if fmt == "table" and selection.sort is None and name in TABLE_SORT:
        selection = dataclasses.replace(selection, sort=TABLE_SORT[name])
    rows_of = TABLE_ROWS[name]
    all_rows = rows_of(data)
    if all_rows:
        check_sort(list(all_rows[0]), selection)
    table_limit = 0 if name in UNCUT_TABLES else TABLE_LIMIT
    limit = selection.limit if selection.limit is not None else table_limit * (fmt == "table")
    selected = select(data, selection, limit)
    rows = order_rows(rows_of(select(data, selection, 0)), selection)
    total = len(rows)
    if limit:
        rows = rows[:limit]
    if fmt != "table":
        emit(selected, rows, fmt)
        return
    rows = with_names(rows, _name_lookup(ctx, rows))
    # Columns asked for by name are all shown; the default ones are fitted to the width.
    text = format_table(
        rows,
        max_width=TABLE_CELL,
        columns=table_columns(name, rows, columns),
        fit=None if columns else TABLE_WIDTH,
    )
    if total > len(rows):
        text += f"({len(rows)} of {total} rows: --limit 0 shows all)\n"
    click.echo(text, nl=False)
    if name == "value":  # the fits and deciles, which the rows alone do not show
        from crm_es.cli.value_summary import value_summary

        click.echo(value_summary(data), nl=False)
