"""What a principal without the right to personal data sees: the same customer and the same
events with every personal value replaced by ``[masked]`` (an auditor without the PII grant).

Events mask exactly the paths their class declares personal (``PII_FIELDS``, see
:mod:`crm_es.domain.personal_fields`), so a field added later is masked as soon as it is
declared. The customer's state masks the personal fields it folds from them.
"""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from crm_es.domain.customer import Customer
from crm_es.domain.events import CustomerEvent
from crm_es.domain.personal_fields import map_personal
from crm_es.domain.principals import MASKED

E = TypeVar("E", bound=CustomerEvent)

# The customer's fields that hold personal values (texts folded from declared event fields).
CUSTOMER_PERSONAL: Final = ("name", "email", "phone", "birthday", "churn_reason")


def mask_event(event: E) -> E:
    """``event`` with each personal value replaced by the mask."""
    changes = map_personal(event, lambda _: MASKED)
    return msgspec.structs.replace(event, **changes) if changes else event


def mask_customer(customer: Customer) -> Customer:
    """A copy of ``customer`` with its personal values and tags replaced by the mask."""
    changes: dict[str, object] = {
        f: MASKED for f in CUSTOMER_PERSONAL if getattr(customer, f) is not None
    }
    if customer.tags:
        changes["tags"] = [MASKED] * len(customer.tags)
    return msgspec.structs.replace(customer, **changes) if changes else customer
