"""A known population of eight customers for the customer-list, campaign-export and summary
tests, with every figure worked out by hand below (reference date 2025-06-30, store zone UTC).

| ref | owner | region | industry | category | size | income | tags | purchase days (CNY each) |
|---|---|---|---|---|---|---|---|---|
| A | staff:li | 华东 | 零售 | signed | 50-199 | 20k+ | vip | 5 × 5,000.00, last 2025-06-25 |
| B | staff:li | 华东 (华北 from 2025-08-01) | 零售 | signed | 10-49 | – | – | 4 × 1,500.00, last 06-10 |
| C | staff:li | 华南 | 制造业 | signed | – | 10k-20k | vip, wholesale | 3 × 100.00, last 01-31 |
| D | staff:wang | 华北 | – | signed | – | – | – | 2 × 50.00, last 2024-06-01 |
| E | staff:wang | 华东 | 零售 | signed | – | – | vip (erased) | 1 × 40.00, 2024-04-01 |
| F | staff:wang | 华南 | 教育 | potential | – | – | wholesale | – |
| G | – | – | – | partner | 10-49 | – | – | – (registered 2025-02-01) |
| H | staff:li | 华东 | 教育 | potential | – | – | – | – |

As of 2025-06-30 the five buyers rank 1..5 on recency and on frequency (A best), so the R×F
grid gives A 55 Champions, B 44 Loyal Customers, C 33 Need Attention, D 22 and E 11
Hibernating; against the medians (C's values, which count as low) A and B are 重要价值客户 and
C, D, E 一般挽留客户. Churn rule (k 3, floor 270 days): A, B active, C at risk (150 silent days
> 135), D and E churned. Lifecycle: A, B loyal, C repeat, D, E churned, F, G, H prospects.
Tiers (12-month CNY spend): A gold (25,000), B silver (6,000), the rest standard.

Consent: A given; B given, withdrawn 2025-03-01; C none; D refused only (none); E given, then
erased; F given, withdrawn 2025-08-01 (after the reference date, before now); G given
2025-05-01; H given back-dated to 2025-01-01 but recorded after :attr:`Population.before_h`.
Last contacts: A 2025-06-20, B 2025-01-10, C never, D 2024-05-01, E never, F 2025-06-29,
G 2025-07-05 (after the reference date), H 2024-12-31 23:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from crm_es import CRM
from crm_es.domain.ids import customer_id_for_ref

AS_OF: Final = "2025-06-30"
PAST: Final = "2024-12-31"
REGISTERED: Final = "2024-01-01T00:00:00+00:00"


def at(day: str, time: str = "12:00") -> str:
    return f"{day}T{time}:00+00:00"


def cid(ref: str) -> str:
    return str(customer_id_for_ref(ref))


class Population(msgspec.Struct, frozen=True):
    before_h: datetime  # a knowledge time before H's back-dated consent was recorded


_PROFILES: Final = {
    "A": {"owner": "staff:li", "region": "华东", "industry": "零售", "category": "signed",
          "company_size": "50-199", "income_band": "20k+", "tags": ["vip"]},
    "B": {"owner": "staff:li", "region": "华东", "industry": "零售", "category": "signed",
          "company_size": "10-49"},
    "C": {"owner": "staff:li", "region": "华南", "industry": "制造业", "category": "signed",
          "income_band": "10k-20k", "tags": ["vip", "wholesale"]},
    "D": {"owner": "staff:wang", "region": "华北", "category": "signed"},
    "E": {"owner": "staff:wang", "region": "华东", "industry": "零售", "category": "signed",
          "tags": ["vip"]},
    "F": {"owner": "staff:wang", "region": "华南", "industry": "教育", "category": "potential",
          "tags": ["wholesale"]},
    "G": {"category": "partner", "company_size": "10-49"},
    "H": {"owner": "staff:li", "region": "华东", "industry": "教育", "category": "potential"},
}  # fmt: skip

_PURCHASES: Final = {
    "A": (["2025-02-25", "2025-03-25", "2025-04-25", "2025-05-25", "2025-06-25"], "5000.00"),
    "B": (["2025-03-10", "2025-04-10", "2025-05-10", "2025-06-10"], "1500.00"),
    "C": (["2025-01-11", "2025-01-21", "2025-01-31"], "100.00"),
    "D": (["2024-05-01", "2024-06-01"], "50.00"),
    "E": (["2024-04-01"], "40.00"),
}

_CONTACTS: Final = {
    "A": at("2025-06-20"),
    "B": at("2025-01-10"),
    "D": at("2024-05-01"),
    "F": at("2025-06-29"),
    "G": at("2025-07-05"),
    "H": at("2024-12-31", "23:00"),
}


def build_population(crm: CRM) -> Population:
    """Store the eight customers above (the read models are the reports' to bring up to date)."""
    for ref, profile in _PROFILES.items():
        registered = at("2025-02-01", "00:00") if ref == "G" else REGISTERED
        crm.register_customer(
            external_ref=ref, name=f"Name {ref}", email=f"{ref.lower()}@example.com",
            phone=f"+86 138 0000 000{ord(ref) - 64}", occurred_at=registered, **profile,
        )  # fmt: skip
    for ref, (days, amount) in _PURCHASES.items():
        for n, day in enumerate(days):
            crm.record_purchase(
                customer=ref, order_id=f"{ref}-{n}", amount=amount, currency="CNY",
                occurred_at=at(day),
            )  # fmt: skip
    for ref, when in _CONTACTS.items():
        crm.log_contact(customer=ref, channel="phone", direction="outbound", occurred_at=when)
    for ref in ("A", "B", "E", "F"):
        crm.change_consent(customer=ref, marketing=True, occurred_at=at("2024-02-01"))
    crm.change_consent(customer="D", marketing=False, occurred_at=at("2024-02-01"))
    crm.change_consent(customer="B", marketing=False, occurred_at=at("2025-03-01"))
    crm.change_consent(customer="F", marketing=False, occurred_at=at("2025-08-01"))
    crm.change_consent(customer="G", marketing=True, occurred_at=at("2025-05-01"))
    crm.update_profile(customer="B", region="华北", occurred_at=at("2025-08-01"))
    crm.erase_personal_data(
        customer="E", requested_by="customer", reason="the customer asked", legal_basis="PIPL 47"
    )
    before_h = datetime.now(UTC)
    crm.change_consent(customer="H", marketing=True, occurred_at=at("2025-01-01"))
    return Population(before_h=before_h)
