"""Customer lists for campaigns (营销策略 by segment): the customers a set of filters selects, and
the export of such a list for one campaign, which keeps only customers who may be sent
marketing and says how many it left out and why.

A list holds no personal data: ids, refs, owner, the profile attributes, tier, lifecycle stage,
segments, churn status, consent and the day of the last contact. Names, emails and phones are
the service's to hand out, to a principal the policy lets read them, with the read logged
(``crm_es.app.contact_details``).

An export leaves out, in this order of reasons: customers whose personal data was erased (there
is nobody left to contact), customers with no marketing consent as of the query (``no_consent``:
never given, or only refused), customers whose consent was withdrawn by then
(``consent_withdrawn``), and customers whose consent held as of the query but has been withdrawn
since (``consent_withdrawn_since``: an export for a past date must never reach someone who said
no today).
"""

from __future__ import annotations

from typing import Final

import msgspec

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.domain.errors import InvalidValue
from crm_es.reports.facts.customer_selection import ListFilters, select_customers
from crm_es.reports.facts.customer_table import ListedCustomer, consent_as_of
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# Why an export left a matching customer out, in the order they are decided.
LEFT_OUT_REASONS: Final = ("erased", "no_consent", "consent_withdrawn", "consent_withdrawn_since")
MAX_CAMPAIGN: Final = 100


class CustomerList(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    filters: ListFilters
    present: int  # customers present as of the query, before the filters
    total: int  # customers the filters selected: every one is in ``customers``
    customers: list[ListedCustomer]


class CampaignExport(msgspec.Struct, frozen=True, kw_only=True):
    campaign: str
    as_of: str
    known_at: str
    filters: ListFilters
    matched: int  # customers the filters selected
    exported: int  # of them, those who may receive marketing: every one is in ``customers``
    left_out: dict[str, int]  # reason -> customers, every reason of LEFT_OUT_REASONS
    customers: list[ListedCustomer]


def customer_list(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    filters: ListFilters,
    rule: ChurnRule,
) -> CustomerList:
    selection = select_customers(tx, tables, query, filters, rule)
    return CustomerList(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        filters=filters,
        present=selection.present,
        total=len(selection.customers),
        customers=selection.customers,
    )


def campaign_export(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    now: ReportQuery,
    campaign: str,
    filters: ListFilters,
    rule: ChurnRule,
) -> CampaignExport:
    """The list of ``filters`` as of ``query`` less the customers who may not be sent marketing;
    ``now`` is the query of the present, whose consent must hold too."""
    check_campaign(campaign)
    selection = select_customers(tx, tables, query, filters, rule)
    current = consent_as_of(tx, tables, now)
    left_out = dict.fromkeys(LEFT_OUT_REASONS, 0)
    exported = []
    for customer in selection.customers:
        reason = _left_out_because(customer, current.get(customer.customer_id, "none"))
        if reason is None:
            exported.append(customer)
        else:
            left_out[reason] += 1
    return CampaignExport(
        campaign=campaign,
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        filters=filters,
        matched=len(selection.customers),
        exported=len(exported),
        left_out=left_out,
        customers=exported,
    )


def _left_out_because(customer: ListedCustomer, consent_now: str) -> str | None:
    if customer.erased:
        return "erased"
    if customer.consent == "none":
        return "no_consent"
    if customer.consent == "withdrawn":
        return "consent_withdrawn"
    if consent_now != "given":
        return "consent_withdrawn_since"
    return None


def check_campaign(campaign: str) -> None:
    """A campaign name is a short printable label (it becomes the purpose of logged reads)."""
    if not campaign.strip() or len(campaign) > MAX_CAMPAIGN or not campaign.isprintable():
        raise InvalidValue(
            "campaign", campaign, f"a printable name of 1 to {MAX_CAMPAIGN} characters"
        )


def left_out_line(export: CampaignExport) -> str:
    """One sentence for people: how many were exported, and who was left out and why."""
    words = {
        "erased": "erased",
        "no_consent": "without marketing consent",
        "consent_withdrawn": "who had withdrawn consent",
        "consent_withdrawn_since": "who withdrew consent since",
    }
    reasons = [f"{n} {words[r]}" for r, n in export.left_out.items() if n]
    tail = f"; left out {', '.join(reasons)}" if reasons else "; none left out"
    return (
        f"campaign {export.campaign}: exported {export.exported} of {export.matched} "
        f"matching customers{tail}"
    )


def table_rows(report: CustomerList | CampaignExport) -> list[dict[str, object]]:
    """One flat row per customer."""
    return [msgspec.structs.asdict(c) for c in report.customers]
