"""Read model ``customers``: who each customer is, and the facts RFM, lifecycle and churn need.

Per customer, the current attributes; and time-independent fact rows with their business time
(``occurred_at``) and recorded time (``recorded_at``): purchases, refunds, churn / win-back,
loyalty points and tier changes. Anything that depends on a reference date is computed by the
reports from these rows.
Holds no personal data but the tags (decrypted as they are read), which an erasure deletes;
names, emails, phones and free texts stay encrypted in the event store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import msgspec

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT

_PROFILE_COLUMNS = ("kind", "category", "region", "industry", "company_size", "income_band")


class Customers(ReadModel):
    name = "customers"
    schema_version = 2  # v2: tags are personal data (deleted on erasure); no churn reasons
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
            f"currency {TEXT} NOT NULL, channel {TEXT}, staff {TEXT}, product_category {TEXT}"
        ),
        "refunds": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, order_id {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL, amount {BIGINT} NOT NULL, "
            f"currency {TEXT} NOT NULL"
        ),
        "churn_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "points_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"points {BIGINT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "tier_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, tier {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {
        "purchases": "customer_id, order_id",
        "refunds": "customer_id, version",
        "churn_facts": "customer_id, version",
        "points_facts": "customer_id, version",
        "tier_facts": "customer_id, version",
    }
    indexes: ClassVar[dict[str, str]] = {
        "purchases_time": "{purchases} (occurred_at)",
    }
    personal_tables: ClassVar[frozenset[str]] = frozenset({"tags"})

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {
            ev.CustomerRegistered: self._registered,
            ev.ProfileUpdated: self._profile_updated,
            ev.OwnerAssigned: self._owner_assigned,
            ev.TagsChanged: self._tags_changed,
            ev.PurchaseRecorded: self._purchase,
            ev.PurchaseRefunded: self._refund,
            ev.CustomerChurned: self._churned,
            ev.CustomerWonBack: self._won_back,
            ev.TierChanged: self._tier_changed,
            ev.PointsGranted: self._points_granted,
            ev.PointsRedeemed: self._points_redeemed,
            ev.PointsExpired: self._points_expired,
            ev.PersonalDataErased: self._erased,
        }

    @staticmethod
    def _registered(e: ev.CustomerRegistered, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {profile} (customer_id, external_ref, kind, category, region, "
            "industry, company_size, income_band, source_channel, owner, tier, "
            "registered_at, registered_recorded_at, erased) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.external_ref, e.kind, e.category, e.region, e.industry,
             e.company_size, e.income_band, e.source_channel, None, "standard", row.occurred_at,
             row.recorded_at, 0),
        )]  # fmt: skip

    @staticmethod
    def _profile_updated(e: ev.ProfileUpdated, row: RowKeys) -> list[Statement]:
        return [
            (f"UPDATE {{profile}} SET {column} = ? WHERE customer_id = ?", (value, row.customer_id))
            for column in _PROFILE_COLUMNS
            if (value := getattr(e, column)) is not msgspec.UNSET
        ]

    @staticmethod
    def _owner_assigned(e: ev.OwnerAssigned, row: RowKeys) -> list[Statement]:
        return [
            ("UPDATE {profile} SET owner = ? WHERE customer_id = ?", (e.owner, row.customer_id))
        ]

    @staticmethod
    def _tags_changed(e: ev.TagsChanged, row: RowKeys) -> list[Statement]:
        cid = row.customer_id
        return [
            ("INSERT INTO {tags} (customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (cid, t))
            for t in e.added
        ] + [("DELETE FROM {tags} WHERE customer_id = ? AND tag = ?", (cid, t)) for t in e.removed]

    @staticmethod
    def _purchase(e: ev.PurchaseRecorded, row: RowKeys) -> list[Statement]:
        occurred = row.occurred_at
        return [(
            "INSERT INTO {purchases} (customer_id, order_id, day, occurred_at, recorded_at, "
            "amount, currency, channel, staff, product_category) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            # The UTC calendar day: the first 10 characters of the UTC time (timefmt.day).
            (row.customer_id, e.order_id, occurred[:10], occurred, row.recorded_at, e.amount,
             e.currency, e.channel, e.staff, e.product_category),
        )]  # fmt: skip

    @staticmethod
    def _refund(e: ev.PurchaseRefunded, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {refunds} (customer_id, version, order_id, occurred_at, "
            "recorded_at, amount, currency) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, e.order_id, row.occurred_at, row.recorded_at,
             e.amount, e.currency),
        )]  # fmt: skip

    @staticmethod
    def _churn_fact(version: int, kind: str, row: RowKeys) -> list[Statement]:
        return [(
            "INSERT INTO {churn_facts} (customer_id, version, kind, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?)",
            (row.customer_id, version, kind, row.occurred_at, row.recorded_at),
        )]  # fmt: skip

    def _churned(self, e: ev.CustomerChurned, row: RowKeys) -> list[Statement]:
        return self._churn_fact(e.originator_version, "churned", row)

    def _won_back(self, e: ev.CustomerWonBack, row: RowKeys) -> list[Statement]:
        return self._churn_fact(e.originator_version, "won_back", row)

    @staticmethod
    def _tier_changed(e: ev.TierChanged, row: RowKeys) -> list[Statement]:
        return [
            (
                "INSERT INTO {tier_facts} (customer_id, version, tier, occurred_at, recorded_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (row.customer_id, e.originator_version, e.to_tier, row.occurred_at,
                 row.recorded_at),
            ),
            ("UPDATE {profile} SET tier = ? WHERE customer_id = ?", (e.to_tier, row.customer_id)),
        ]  # fmt: skip

    @staticmethod
    def _points_fact(kind: str, e: ev.PointsGranted | ev.PointsRedeemed | ev.PointsExpired,
                     row: RowKeys) -> list[Statement]:  # fmt: skip
        return [(
            "INSERT INTO {points_facts} (customer_id, version, kind, points, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, kind, e.points, row.occurred_at,
             row.recorded_at),
        )]  # fmt: skip

    def _points_granted(self, e: ev.PointsGranted, row: RowKeys) -> list[Statement]:
        return self._points_fact("granted", e, row)

    def _points_redeemed(self, e: ev.PointsRedeemed, row: RowKeys) -> list[Statement]:
        return self._points_fact("redeemed", e, row)

    def _points_expired(self, e: ev.PointsExpired, row: RowKeys) -> list[Statement]:
        return self._points_fact("expired", e, row)

    @staticmethod
    def _erased(e: ev.PersonalDataErased, row: RowKeys) -> list[Statement]:
        return [
            ("UPDATE {profile} SET erased = 1 WHERE customer_id = ?", (row.customer_id,)),
            ("DELETE FROM {tags} WHERE customer_id = ?", (row.customer_id,)),
        ]
