"""Read model ``customers``: who each customer is, and the facts RFM, lifecycle and churn need.

Per customer, the current attributes; and time-independent fact rows with their business time
(``occurred_at``) and recorded time (``recorded_at``): purchases, refunds, churn / win-back,
loyalty points and tier changes. Anything that depends on a reference date is computed by the
reports from these rows.
Holds no personal data (names, emails, phones, birthdays stay in the event store).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import msgspec

from crm_es.app.database import BIGINT, TEXT
from crm_es.domain import events as ev
from crm_es.projections.engine import ReadModel, RowKeys, Statement
from crm_es.projections.timefmt import day

_POINTS_KINDS: dict[type[ev.CustomerEvent], str] = {
    ev.PointsGranted: "granted",
    ev.PointsRedeemed: "redeemed",
    ev.PointsExpired: "expired",
}
_PROFILE_COLUMNS = ("kind", "category", "region", "industry", "company_size", "income_band")


class CustomerFacts(ReadModel):
    name = "customers"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "profile": (
            f"customer_id {TEXT} PRIMARY KEY, external_ref {TEXT}, kind {TEXT}, category {TEXT}, "
            f"region {TEXT}, industry {TEXT}, company_size {TEXT}, income_band {TEXT}, "
            f"source_channel {TEXT}, owner {TEXT}, tier {TEXT}, "
            f"registered_at {TEXT} NOT NULL, registered_recorded_at {TEXT} NOT NULL, "
            f"erased {BIGINT} NOT NULL DEFAULT 0"
        ),
        "tags": f"customer_id {TEXT} NOT NULL, tag {TEXT} NOT NULL, PRIMARY KEY (customer_id, tag)",
        "purchases": (
            f"customer_id {TEXT} NOT NULL, order_id {TEXT} NOT NULL, day {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, amount {BIGINT} NOT NULL, "
            f"currency {TEXT} NOT NULL, channel {TEXT}, staff {TEXT}, product_category {TEXT}, "
            "PRIMARY KEY (customer_id, order_id)"
        ),
        "refunds": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, order_id {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, amount {BIGINT} NOT NULL, "
            f"currency {TEXT} NOT NULL, PRIMARY KEY (customer_id, version)"
        ),
        "churn_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, reason {TEXT}, "
            "PRIMARY KEY (customer_id, version)"
        ),
        "points_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"points {BIGINT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, "
            "PRIMARY KEY (customer_id, version)"
        ),
        "tier_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, tier {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, "
            "PRIMARY KEY (customer_id, version)"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {
        "purchases_time": "{purchases} (occurred_at)",
    }

    def handle(self, event: ev.CustomerEvent, row: RowKeys) -> Iterable[Statement]:
        cid, occurred, recorded = row.customer_id, row.occurred_at, row.recorded_at
        if isinstance(event, ev.CustomerRegistered):
            yield (
                "INSERT INTO {profile} (customer_id, external_ref, kind, category, region, "
                "industry, company_size, income_band, source_channel, owner, tier, "
                "registered_at, registered_recorded_at, erased) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'standard', ?, ?, 0)",
                (cid, event.external_ref, event.kind, event.category, event.region,
                 event.industry, event.company_size, event.income_band, event.source_channel,
                 occurred, recorded),
            )  # fmt: skip
        elif isinstance(event, ev.ProfileUpdated):
            for column in _PROFILE_COLUMNS:
                value = getattr(event, column)
                if value is not msgspec.UNSET:
                    yield (
                        f"UPDATE {{profile}} SET {column} = ? WHERE customer_id = ?",
                        (value, cid),
                    )
        elif isinstance(event, ev.OwnerAssigned):
            yield ("UPDATE {profile} SET owner = ? WHERE customer_id = ?", (event.owner, cid))
        elif isinstance(event, ev.TagsChanged):
            for tag in event.added:
                yield (
                    "INSERT INTO {tags} (customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (cid, tag),
                )
            for tag in event.removed:
                yield ("DELETE FROM {tags} WHERE customer_id = ? AND tag = ?", (cid, tag))
        elif isinstance(event, ev.PurchaseRecorded):
            yield (
                "INSERT INTO {purchases} (customer_id, order_id, day, occurred_at, recorded_at, "
                "amount, currency, channel, staff, product_category) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, event.order_id, day(event.occurred_at), occurred, recorded, event.amount,
                 event.currency, event.channel, event.staff, event.product_category),
            )  # fmt: skip
        elif isinstance(event, ev.PurchaseRefunded):
            yield (
                "INSERT INTO {refunds} (customer_id, version, order_id, occurred_at, "
                "recorded_at, amount, currency) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cid, event.originator_version, event.order_id, occurred, recorded,
                 event.amount, event.currency),
            )  # fmt: skip
        elif isinstance(event, ev.CustomerChurned | ev.CustomerWonBack):
            kind = "churned" if isinstance(event, ev.CustomerChurned) else "won_back"
            reason = event.churn_reason if isinstance(event, ev.CustomerChurned) else None
            yield (
                "INSERT INTO {churn_facts} (customer_id, version, kind, occurred_at, "
                "recorded_at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, event.originator_version, kind, occurred, recorded, reason),
            )
        elif isinstance(event, ev.TierChanged):
            yield (
                "INSERT INTO {tier_facts} (customer_id, version, tier, occurred_at, recorded_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (cid, event.originator_version, event.to_tier, occurred, recorded),
            )
            yield ("UPDATE {profile} SET tier = ? WHERE customer_id = ?", (event.to_tier, cid))
        elif isinstance(event, ev.PointsGranted | ev.PointsRedeemed | ev.PointsExpired):
            kind = _POINTS_KINDS[type(event)]
            yield (
                "INSERT INTO {points_facts} (customer_id, version, kind, points, occurred_at, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, event.originator_version, kind, event.points, occurred, recorded),
            )
        elif isinstance(event, ev.PersonalDataErased):
            yield ("UPDATE {profile} SET erased = 1 WHERE customer_id = ?", (cid,))
