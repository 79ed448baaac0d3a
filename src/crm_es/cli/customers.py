"""``crm-es customers list|export|summary|find|duplicates|merge``: customer lists for campaigns,
客户品类汇总, finding customers by phone or email (客户识别), and merging one registered twice.

Each command parses the filters, makes one query of the read models (``Reports``) and renders
it; ``--with-contact-details`` adds one logged read of the service, which hands names, emails
and phones only to a principal the policy lets read them. Presentation is in
:mod:`crm_es.cli.customer_views`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import click

from crm_es.analytics.churn_settings import ChurnRule
from crm_es.cli.customer_views import (
    list_cut,
    present_export,
    present_list,
    present_summary,
    with_contacts,
)
from crm_es.cli.render import format_option
from crm_es.cli.report_options import (
    as_of_option,
    columns_option,
    known_at_option,
    refresh_option,
    rule_options,
)
from crm_es.cli.shared import Context, emit_json

if TYPE_CHECKING:
    from crm_es.reports.facts.customer_selection import ListFilters

pass_ctx = click.make_pass_decorator(Context)

# Option name -> the filter it sets (each may be given several times: any of the values).
_MULTIPLE: Final = (
    ("segment", "NAME", "in this R×F or 8-class segment (e.g. Champions, 重要价值客户)"),
    ("lifecycle", "STAGE", "at this lifecycle stage (prospect, new, repeat, loyal, churned, "
                           "won_back)"),
    ("tag", "TAG", "with this tag"),
    ("region", "REGION", "of this region ('(none)': without one)"),
    ("industry", "INDUSTRY", "of this industry ('(none)': without one)"),
    ("category", "CATEGORY", "of this category (potential, intended, signed, partner, …)"),
    ("owner", "STAFF", "of this owner (e.g. staff:wang; '(unassigned)': none)"),
    ("tier", "TIER", "of this tier (standard, silver, gold, platinum)"),
    ("churn_status", "STATUS", "of this churn-rule status (prospect, active, at_risk, churned)"),
)  # fmt: skip


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filters every customers command takes, then the time and format options (shown in
    --help in this order)."""
    options = [
        click.option(
            "--" + name.replace("_", "-"), name, multiple=True, metavar=metavar,
            help=f"Only customers {what}; repeat for any of several.",
        )
        for name, metavar, what in _MULTIPLE
    ]  # fmt: skip
    options.append(
        click.option(
            "--consent",
            multiple=True,
            type=click.Choice(["given", "not_given", "withdrawn", "none"]),
            help="Only customers whose marketing consent is given, not given (withdrawn or "
            "none), withdrawn after being given, or none (never given).",
        )
    )
    options.append(
        click.option(
            "--last-contact-before",
            default=None,
            metavar="D",
            help="Only customers not contacted since D (a bare date: since its start), the "
            "never-contacted included.",
        )
    )
    options += [as_of_option, known_at_option, format_option, refresh_option, *rule_options]
    for option in reversed(options):  # the last applied is listed first
        command = option(command)
    return command


def _filters(options: dict[str, Any]) -> ListFilters:
    from crm_es.reports.facts.customer_selection import ListFilters

    chosen = {name: tuple(options.pop(name)) for name, _, _ in _MULTIPLE}
    return ListFilters(
        **chosen,
        consent=tuple(options.pop("consent")),
        last_contact_before=options.pop("last_contact_before"),
    )


def _rule(options: dict[str, Any]) -> ChurnRule:
    return ChurnRule(
        k=options.pop("k"),
        floor_days=options.pop("floor_days"),
        at_risk_share=options.pop("at_risk_share"),
    )


contact_option = click.option(
    "--with-contact-details",
    is_flag=True,
    help="Add name, email and phone of the customers whose personal data you may read (staff: "
    "their own; analysts: none); the read is written to the access log.",
)
purpose_option = click.option(
    "--purpose",
    default=None,
    metavar="TEXT",
    help="Why the contact details are read, for the access log.",
)


@click.group()
def customers() -> None:
    """Customer lists for campaigns, and customers per category (客户品类汇总).

    \b
    Example:
      crm-es customers list --segment Champions --region 华东 --consent given
    """


@customers.command("list")
@_filter_options
@contact_option
@purpose_option
@columns_option
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="At most this many rows (0: all). [default: 50 in a table, all otherwise]",
)
@pass_ctx
def list_customers(
    ctx: Context, /, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
    with_contact_details: bool, purpose: str | None, limit: int | None, columns: str | None,
    **options: Any,
) -> None:  # fmt: skip
    """The customers the filters select, by external ref: no personal data unless
    --with-contact-details.

    \b
    Example:
      crm-es customers list --lifecycle churned --owner staff:li --format csv
      crm-es customers list --last-contact-before 2026-01-01 --tier gold --tier platinum
    """
    from crm_es.reports.api import Reports

    filters, rule = _filters(options), _rule(options)
    with Reports(ctx.app, refresh=refresh) as reports:
        listed = reports.customer_list(filters, as_of=as_of, known_at=known_at, rule=rule)
    cut = list_cut(fmt, limit)
    contacts = with_contacts(ctx, listed, with_contact_details, purpose or "customer list", cut)
    present_list(listed, contacts, fmt, limit, columns)


@customers.command("export")
@click.option(
    "--campaign",
    default=None,
    metavar="NAME",
    help="The campaign the list is for (the purpose of the contact details' read). Required.",
)
@_filter_options
@contact_option
@columns_option
@pass_ctx
def export(
    ctx: Context, /, campaign: str | None, as_of: str | None, known_at: str | None, fmt: str | None,
    refresh: bool, with_contact_details: bool, columns: str | None, **options: Any,
) -> None:  # fmt: skip
    """The list for a campaign: only customers with marketing consent (as of --as-of and
    still now), not erased. How many were left out and why goes to stderr (JSON, CSV) or
    below the table.

    \b
    Example:
      crm-es customers export --campaign "2026 spring" --segment 重要挽留客户 --format csv
    """
    from crm_es.reports.api import Reports

    filters, rule = _filters(options), _rule(options)
    with Reports(ctx.app, refresh=refresh) as reports:
        # A missing name is the export's own error (after the dates are checked), not click's
        # required=True: the CLI walks of every option can then reach each one.
        exported = reports.campaign_export(
            campaign or "", filters, as_of=as_of, known_at=known_at, rule=rule
        )
    contacts = with_contacts(ctx, exported, with_contact_details, f"campaign {exported.campaign}")
    present_export(exported, contacts, fmt, columns)


@customers.command("summary")
@_filter_options
@pass_ctx
def summary(
    ctx: Context, /, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
    **options: Any,
) -> None:  # fmt: skip
    """Customers per category, industry, region, company size and income band (客户品类汇总),
    of all customers or of those the filters select.

    \b
    Example:
      crm-es customers summary --as-of 2026-06-30
      crm-es customers summary --lifecycle loyal --format csv
    """
    from crm_es.reports.api import Reports

    filters, rule = _filters(options), _rule(options)
    with Reports(ctx.app, refresh=refresh) as reports:
        counted = reports.customer_summary(filters, as_of=as_of, known_at=known_at, rule=rule)
    present_summary(counted, fmt)


@customers.command("find")
@click.option(
    "--phone",
    default=None,
    metavar="PHONE",
    help="The phone to look up (+86/0086 and spaces, dashes, brackets ignored).",
)
@click.option(
    "--email",
    default=None,
    metavar="EMAIL",
    help="The email to look up (case and surrounding spaces ignored).",
)
@as_of_option
@known_at_option
@format_option
@refresh_option
@contact_option
@purpose_option
@pass_ctx
def find(
    ctx: Context, /, phone: str | None, email: str | None, as_of: str | None,
    known_at: str | None, fmt: str | None, refresh: bool, with_contact_details: bool,
    purpose: str | None,
) -> None:  # fmt: skip
    """Who is calling? (客户识别) The customers whose phone, or email, is this one as of
    --as-of, by ref, owner and category, through a keyed index (the store holds no phone in
    clear). Give --phone or --email.

    \b
    Example:
      crm-es customers find --phone "+86 138 0000 0000"
      crm-es customers find --email wf@example.com --with-contact-details --purpose "inbound call"
    """
    from crm_es.cli.customer_find_views import find_contacts, present_matches
    from crm_es.reports.api import Reports

    with Reports(ctx.app, refresh=refresh) as reports:
        found = reports.find_customers(phone=phone, email=email, as_of=as_of, known_at=known_at)
    ids = [c.customer_id for c in found.customers]
    contacts = find_contacts(ctx, ids, with_contact_details, purpose or f"find by {found.by}")
    present_matches(found, contacts, fmt)


@customers.command("duplicates")
@as_of_option
@known_at_option
@format_option
@refresh_option
@contact_option
@purpose_option
@pass_ctx
def duplicates(
    ctx: Context, /, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
    with_contact_details: bool, purpose: str | None,
) -> None:  # fmt: skip
    """Customers likely registered twice: groups sharing a phone or an email as of --as-of,
    largest first, with their refs (the shared value is not shown).

    \b
    Example:
      crm-es customers duplicates --format csv
    """
    from crm_es.cli.customer_find_views import find_contacts, present_duplicates
    from crm_es.reports.api import Reports

    with Reports(ctx.app, refresh=refresh) as reports:
        groups = reports.duplicate_customers(as_of=as_of, known_at=known_at)
    ids = [c.customer_id for g in groups.groups for c in g.customers]
    contacts = find_contacts(ctx, ids, with_contact_details, purpose or "duplicate customers")
    present_duplicates(groups, contacts, fmt)


@customers.command("merge")
@click.argument("duplicate")
@click.option("--into", "survivor", required=True, metavar="CUSTOMER",
              help="The customer that stays (UUID or external ref).")  # fmt: skip
@click.option("--reason", default=None, help="Why (recorded on both events), e.g. a ticket id.")
@click.option("--command-id", default=None,
              help="Idempotency key: the same merge sent again is answered as done.")  # fmt: skip
@pass_ctx
def merge(
    ctx: Context, /, duplicate: str, survivor: str, reason: str | None, command_id: str | None
) -> None:
    """Merge DUPLICATE, a customer registered twice, into --into (the one that stays): both
    streams record it in one transaction; DUPLICATE is closed (later commands on it are
    refused, naming the survivor; its history stays readable and verifiable) and every report
    counts the pair as one from now on. Refused for the same, an erased or a merged customer.

    \b
    Example:
      crm-es customers duplicates
      crm-es customers merge C-1002 --into C-1001 --reason "ticket 4711"
    """
    from crm_es.domain.ids import customer_id_for_ref

    result = ctx.app.merge_customers(
        customer=duplicate, into=survivor, reason=reason, command_id=command_id
    )
    emit_json(
        {
            "ok": True,
            "customer_id": result.customer_id,
            "version": result.version,
            "merged_into": customer_id_for_ref(survivor),
            "duplicate": result.duplicate,
        }
    )
