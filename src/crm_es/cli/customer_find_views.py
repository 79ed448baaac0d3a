"""How ``crm-es customers find`` and ``customers duplicates`` show their answers: JSON for
programs, CSV for spreadsheets, tables for people, like the customer lists; names, emails and
phones beside the ref only when ``--with-contact-details`` asked for them, read through the
service's policy and written to the access log (:mod:`crm_es.app.contact_details`).

Neither the value looked up nor its hash is ever printed: the answer is who, not what.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
import msgspec

from crm_es.cli.customer_views import with_contact_columns
from crm_es.cli.render import format_table, resolved_format
from crm_es.cli.shared import Context
from crm_es.cli.table_view import TABLE_CELL

if TYPE_CHECKING:
    from crm_es.app.contact_details import ContactLookup
    from crm_es.reports.customer_find import CustomerMatches, DuplicateCustomers


def find_contacts(
    ctx: Context, customer_ids: Sequence[str], wanted: bool, purpose: str
) -> ContactLookup | None:
    """The contact details of the customers found, as the principal may read them (a logged
    read), or None when they were not asked for."""
    if not wanted:
        return None
    from crm_es.app.contact_details import contact_details

    return contact_details(ctx.app, list(customer_ids), purpose=purpose)


def _document(data: dict[str, Any], contacts: ContactLookup | None) -> dict[str, Any]:
    """JSON: each customer with a ``contact`` object (null where withheld) when asked for."""
    if contacts is None:
        return data
    customers = data.get("customers")
    listed = list(customers) if isinstance(customers, list) else []
    for group in data.get("groups", []):
        listed += group["customers"]
    for row in listed:
        found = contacts.details.get(row["customer_id"])
        row["contact"] = msgspec.to_builtins(found) if found is not None else None
    data["contact_details_withheld"] = contacts.withheld
    return data


def _emit(
    data: dict[str, Any], rows: list[dict[str, Any]], fmt: str, summary: str,
    contacts: ContactLookup | None,
) -> None:  # fmt: skip
    from crm_es.reports.api import to_csv

    if fmt == "table":
        if rows:  # the ref names the customer for a person; the id stays in JSON and CSV
            columns = [c for c in rows[0] if c != "customer_id"]
            click.echo(format_table(rows, max_width=TABLE_CELL, columns=columns), nl=False)
        click.echo(summary)
    elif fmt == "json":
        sys.stdout.buffer.write(msgspec.json.encode(_document(data, contacts)) + b"\n")
    else:
        sys.stdout.write(to_csv(rows))
    sys.stdout.flush()
    if contacts is not None and contacts.withheld:
        line = f"contact details of {contacts.withheld} customers withheld: {contacts.withheld_why}"
        click.echo(line, err=fmt != "table")


def present_matches(
    report: CustomerMatches, contacts: ContactLookup | None, fmt: str | None
) -> None:
    from crm_es.reports.customer_find import match_rows

    rows = with_contact_columns(match_rows(report), contacts)
    summary = f"({report.total} customers with this {report.by} as of {report.as_of})"
    _emit(msgspec.to_builtins(report), rows, resolved_format(fmt), summary, contacts)


def present_duplicates(
    report: DuplicateCustomers, contacts: ContactLookup | None, fmt: str | None
) -> None:
    from crm_es.reports.customer_find import duplicate_rows

    rows = with_contact_columns(duplicate_rows(report), contacts)
    summary = (
        f"({len(report.groups)} groups sharing a phone or an email, {report.customers} "
        f"customers, as of {report.as_of})"
    )
    _emit(msgspec.to_builtins(report), rows, resolved_format(fmt), summary, contacts)
