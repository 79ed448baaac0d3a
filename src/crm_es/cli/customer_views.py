"""How ``crm-es customers`` shows its answers: JSON for programs, CSV for spreadsheets, tables
for people; contact details beside the ref when they were asked for and may be read.

What is not data goes where a program does not read it: how many customers a campaign export
left out and why, and how many customers' contact details were withheld, are written to stderr
for JSON and CSV and below a table.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

import click
import msgspec

from crm_es.cli.render import format_table, resolved_format
from crm_es.cli.shared import Context
from crm_es.cli.table_view import TABLE_CELL, TABLE_LIMIT, TABLE_WIDTH, table_columns

if TYPE_CHECKING:
    from crm_es.app.contact_details import ContactLookup
    from crm_es.reports.customer_list import CampaignExport, CustomerList
    from crm_es.reports.customer_summary import CustomerSummary

# A table's columns, most useful first: the last go when the terminal is narrow (JSON and CSV
# carry every one).
TABLE_COLUMNS: Final = (
    "external_ref", "name", "email", "phone", "owner", "lifecycle", "segment", "tier",
    "churn_status", "consent", "category", "region", "industry", "last_contact_on",
    "segment_cn", "company_size", "income_band", "erased",
)  # fmt: skip
_CONTACT_FIELDS: Final = ("name", "email", "phone")


def list_cut(fmt: str | None, limit: int | None) -> int:
    """How many rows a list shows (0: all): ``--limit``, else a table's first rows."""
    return limit if limit is not None else TABLE_LIMIT * (resolved_format(fmt) == "table")


def with_contacts(
    ctx: Context, report: CustomerList | CampaignExport, wanted: bool, purpose: str, cut: int = 0
) -> ContactLookup | None:
    """The contact details of the customers shown (the first ``cut``; 0: all) as the principal
    may read them (a logged read), or None when they were not asked for. Rows left out are
    not read: the access log says who saw whom, not who could have."""
    if not wanted:
        return None
    from crm_es.app.contact_details import contact_details

    ids = [c.customer_id for c in report.customers]
    return contact_details(ctx.app, ids[:cut] if cut else ids, purpose=purpose)


def _rows(
    report: CustomerList | CampaignExport, contacts: ContactLookup | None
) -> list[dict[str, Any]]:
    """One flat row per customer, the contact details beside the ref (empty where withheld)."""
    from crm_es.reports.customer_list import table_rows

    return with_contact_columns(table_rows(report), contacts)


def with_contact_columns(
    rows: list[dict[str, Any]], contacts: ContactLookup | None
) -> list[dict[str, Any]]:
    """Each row with the contact details after its ref (empty where withheld)."""
    if contacts is None:
        return rows
    out = []
    for row in rows:
        found = contacts.details.get(str(row["customer_id"]))
        merged: dict[str, Any] = {}
        for column, value in row.items():
            merged[column] = value
            if column == "external_ref":
                for field in _CONTACT_FIELDS:
                    merged[field] = getattr(found, field) if found is not None else None
        out.append(merged)
    return out


def _document(
    report: CustomerList | CampaignExport, contacts: ContactLookup | None, limit: int
) -> dict[str, Any]:
    """The report as JSON-ready data: each customer with a ``contact`` object (null where
    withheld) when contact details were asked for."""
    data: dict[str, Any] = msgspec.to_builtins(report)
    if limit:
        data["customers"] = data["customers"][:limit]
    if contacts is not None:
        for row in data["customers"]:
            found = contacts.details.get(row["customer_id"])
            row["contact"] = msgspec.to_builtins(found) if found is not None else None
        data["contact_details_withheld"] = contacts.withheld
    return data


def _withheld_line(contacts: ContactLookup | None) -> str | None:
    if contacts is None or not contacts.withheld:
        return None
    return f"contact details of {contacts.withheld} customers withheld: {contacts.withheld_why}"


def _table(rows: list[dict[str, Any]], wanted: str | None) -> str:
    """Columns asked for by name are all shown; the default ones are fitted to the width."""
    if wanted is None:
        columns: list[str] = [c for c in TABLE_COLUMNS if rows and c in rows[0]]
    else:
        columns = table_columns("customers", rows, wanted)
    fit = None if wanted else TABLE_WIDTH
    return format_table(rows, max_width=TABLE_CELL, columns=columns, fit=fit)


def _write(data: dict[str, Any], rows: list[dict[str, Any]], fmt: str) -> None:
    from crm_es.reports.api import to_csv

    if fmt == "json":
        sys.stdout.buffer.write(msgspec.json.encode(data) + b"\n")
    else:
        sys.stdout.write(to_csv(rows))
    sys.stdout.flush()


def _notes(lines: list[str | None], fmt: str) -> None:
    """Lines for people: below a table, on stderr beside JSON and CSV."""
    for line in lines:
        if line is not None:
            click.echo(line, err=fmt != "table")


def present_list(
    report: CustomerList,
    contacts: ContactLookup | None,
    fmt: str | None,
    limit: int | None,
    columns: str | None,
) -> None:
    cut = list_cut(fmt, limit)
    fmt = resolved_format(fmt)
    rows = _rows(report, contacts)
    shown = rows[:cut] if cut else rows
    if fmt == "table":
        click.echo(_table(shown, columns), nl=False)
        if len(shown) < len(rows):
            click.echo(f"({len(shown)} of {len(rows)} customers: --limit 0 shows all)")
        else:
            click.echo(f"({report.total} of {report.present} customers)")
    else:
        _write(_document(report, contacts, cut), shown, fmt)
    _notes([_withheld_line(contacts)], fmt)


def present_export(
    report: CampaignExport, contacts: ContactLookup | None, fmt: str | None, columns: str | None
) -> None:
    """Every exported customer in every format (an export is not cut), then who was left out."""
    from crm_es.reports.customer_list import left_out_line

    fmt = resolved_format(fmt)
    rows = _rows(report, contacts)
    if fmt == "table":
        click.echo(_table(rows, columns), nl=False)
    else:
        _write(_document(report, contacts, 0), rows, fmt)
    _notes([left_out_line(report), _withheld_line(contacts)], fmt)


def present_summary(report: CustomerSummary, fmt: str | None) -> None:
    """One table per attribute for people; one row per (attribute, value) in CSV."""
    from crm_es.reports.customer_summary import table_rows

    fmt = resolved_format(fmt)
    if fmt != "table":
        _write(msgspec.to_builtins(report), table_rows(report), fmt)
        return
    click.echo(f"{report.total} customers as of {report.as_of}")
    for attribute, values in report.by.items():
        rows = [msgspec.structs.asdict(v) for v in values]
        click.echo(f"\n{attribute}")
        click.echo(format_table(rows, max_width=TABLE_CELL), nl=False)
