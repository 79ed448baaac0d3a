"""Names, emails and phones of listed customers, for a principal the policy lets read them.

A customer list (``crm_es.reports.customer_list``) holds no personal data; a person who must call
or mail the customers on it asks the service for their contact details, which decides each
customer by the one policy (:func:`crm_es.domain.policy.check_customer_read`, by the customer's
current owner): staff and managers read their own customers (and the unowned pool), admins and
privacy officers every one, an auditor without the PII grant reads a mask, analysts none. The
customers shown in clear are written to the access log in one entry, with the purpose (a
campaign's name, say); masked, erased and withheld ones are not (they showed nothing).

Details are the customer's current ones, whatever date the list was of: they are how the
customer is reached today. An erased customer's read ``[erased]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final
from uuid import UUID

import msgspec

from crm_es.domain.errors import PermissionDenied
from crm_es.domain.masking import mask_customer
from crm_es.domain.policy import check_customer_read
from crm_es.domain.values import ERASED

if TYPE_CHECKING:
    from crm_es.app.service import CRM

CONTACT_FIELDS: Final = ("name", "email", "phone")


class ContactDetails(msgspec.Struct, frozen=True):
    name: str | None
    email: str | None
    phone: str | None


class ContactLookup(msgspec.Struct, frozen=True, kw_only=True):
    details: dict[str, ContactDetails]  # by customer id: those the principal may read
    withheld: int  # customers whose details the policy does not let the principal read
    withheld_why: str | None  # the policy's words for the first of them


def contact_details(
    crm: CRM, customer_ids: Sequence[str], *, purpose: str | None = None
) -> ContactLookup:
    """The contact details of ``customer_ids`` the principal may read (masked where it may only
    see a mask); the reads in clear logged as one ``list`` entry with ``purpose``."""
    details: dict[str, ContactDetails] = {}
    shown: list[UUID] = []
    withheld, why = 0, None
    for cid in dict.fromkeys(customer_ids):
        state = crm.store.load(UUID(cid))
        if state is None:  # not stored: nothing to show, nothing to withhold
            continue
        try:
            clear = check_customer_read(crm.principal, "read_customer", state.owner, cid)
        except PermissionDenied as e:
            withheld += 1
            why = why or str(e)
            continue
        if state.erased:
            details[cid] = ContactDetails(ERASED, ERASED, ERASED)
            continue
        seen = state if clear else mask_customer(state)
        details[cid] = ContactDetails(seen.name, seen.email, seen.phone)
        if clear:
            shown.append(state.id)
    crm.log_reads(shown, "list", CONTACT_FIELDS, purpose)
    return ContactLookup(details=details, withheld=withheld, withheld_why=why)
