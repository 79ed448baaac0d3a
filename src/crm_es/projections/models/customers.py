"""Read model ``customers``: who each customer is at any moment, and the facts RFM, lifecycle and
churn need.

Everything is a time-stamped fact with its business time (``occurred_at``) and recorded time
(``recorded_at``), never overwritten, so a report as of D known at T finds the values of that
moment, forever: attributes (kind, category, region, industry, company size, income band, owner,
marketing consent) and tags as histories; the customer's presence (it exists from its earliest
event, which a back-dated import can move earlier); purchases, refunds, churn and win-back, and
loyalty points. The tier is not stored: it follows from the purchases (the rolling 12-month rule)
for any date. Anything that depends on a reference date is computed by the reports.

Holds no personal data but the tags (decrypted as they are read), which an erasure deletes;
names, emails, phones and free texts stay encrypted in the event store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

import msgspec

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT

# Attributes kept as histories; reports ask for the value as of a date.
ATTRIBUTES: Final = (
    "kind", "category", "region", "industry", "company_size", "income_band", "owner", "consent",
)  # fmt: skip
_PROFILE_ATTRIBUTES: Final = ATTRIBUTES[:6]
_FACT = (
    "INSERT INTO {attribute_facts} (customer_id, version, attribute, value, occurred_at, "
    "recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_TAG = (
    "INSERT INTO {tag_facts} (customer_id, version, tag, added, occurred_at, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# A presence row only where this event is earlier than every one recorded before it: the
# customer's earliest business time as recorded by any time T is the least row recorded by T.
_PRESENCE = (
    "INSERT INTO {presence} (customer_id, occurred_at, recorded_at, version) "
    "SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM {presence} "
    "WHERE customer_id = ? AND occurred_at <= ?)"
)


class Customers(ReadModel):
    name = "customers"
    schema_version = 3  # v3: attributes and tags as histories, presence, local days
    tables: ClassVar[dict[str, str]] = {
        "profile": (
            f"customer_id {TEXT} PRIMARY KEY, external_ref {TEXT}, source_channel {TEXT}, "
            f"registered_at {TEXT} NOT NULL, registered_recorded_at {TEXT} NOT NULL, "
            f"erased {BIGINT} NOT NULL DEFAULT 0"
        ),
        "presence": (
            f"customer_id {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, "
            f"recorded_at {TEXT} NOT NULL, version {BIGINT} NOT NULL, "
            "PRIMARY KEY (customer_id, occurred_at, version)"
        ),
        "attribute_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, attribute {TEXT} NOT NULL, "
            f"value {TEXT}, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "tag_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, tag {TEXT} NOT NULL, "
            f"added {BIGINT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
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
            f"day {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
        "points_facts": (
            f"customer_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, kind {TEXT} NOT NULL, "
            f"points {BIGINT} NOT NULL, expires_on {TEXT}, day {TEXT} NOT NULL, "
            f"occurred_at {TEXT} NOT NULL, recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {
        "attribute_facts": "customer_id, version, attribute",
        "tag_facts": "customer_id, version, tag",
        "purchases": "customer_id, order_id",
        "refunds": "customer_id, version",
        "churn_facts": "customer_id, version",
        "points_facts": "customer_id, version",
    }
    indexes: ClassVar[dict[str, str]] = {
        "purchases_time": "{purchases} (occurred_at)",
        "attributes_by_name": "{attribute_facts} (attribute, customer_id)",
    }
    personal_tables: ClassVar[frozenset[str]] = frozenset({"tag_facts"})

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        every: dict[type[ev.CustomerEvent], Handler] = dict.fromkeys(
            ev.CUSTOMER_EVENT_TYPES, self._present
        )
        return {
            **every,
            ev.CustomerRegistered: self._registered,
            ev.ProfileUpdated: self._profile_updated,
            ev.OwnerAssigned: self._owner_assigned,
            ev.ConsentChanged: self._consent_changed,
            ev.TagsChanged: self._tags_changed,
            ev.PurchaseRecorded: self._purchase,
            ev.PurchaseRefunded: self._refund,
            ev.CustomerChurned: self._churned,
            ev.CustomerWonBack: self._won_back,
            ev.PointsGranted: self._points_granted,
            ev.PointsRedeemed: self._points_redeemed,
            ev.PointsExpired: self._points_expired,
            ev.PersonalDataErased: self._erased,
        }

    @staticmethod
    def _present(e: ev.CustomerEvent, row: RowKeys) -> list[Statement]:
        cid, occurred = row.customer_id, row.occurred_at
        version = e.originator_version
        return [(_PRESENCE, (cid, occurred, row.recorded_at, version, cid, occurred))]

    def _registered(self, e: ev.CustomerRegistered, row: RowKeys) -> list[Statement]:
        cid, version = row.customer_id, e.originator_version
        facts = [
            (_FACT, (cid, version, name, value, row.occurred_at, row.recorded_at))
            for name in _PROFILE_ATTRIBUTES
            if (value := getattr(e, name)) is not None
        ]
        return [
            (
                "INSERT INTO {profile} (customer_id, external_ref, source_channel, "
                "registered_at, registered_recorded_at, erased) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, e.external_ref, e.source_channel, row.occurred_at, row.recorded_at, 0),
            ),
            *self._present(e, row),
            *facts,
        ]

    def _profile_updated(self, e: ev.ProfileUpdated, row: RowKeys) -> list[Statement]:
        cid, version = row.customer_id, e.originator_version
        return [
            *self._present(e, row),
            *(
                (_FACT, (cid, version, name, value, row.occurred_at, row.recorded_at))
                for name in _PROFILE_ATTRIBUTES
                if (value := getattr(e, name)) is not msgspec.UNSET
            ),
        ]

    def _owner_assigned(self, e: ev.OwnerAssigned, row: RowKeys) -> list[Statement]:
        fact = (row.customer_id, e.originator_version, "owner", e.owner, row.occurred_at,
                row.recorded_at)  # fmt: skip
        return [*self._present(e, row), (_FACT, fact)]

    def _consent_changed(self, e: ev.ConsentChanged, row: RowKeys) -> list[Statement]:
        value = "given" if e.marketing else "withdrawn"
        fact = (row.customer_id, e.originator_version, "consent", value, row.occurred_at,
                row.recorded_at)  # fmt: skip
        return [*self._present(e, row), (_FACT, fact)]

    def _tags_changed(self, e: ev.TagsChanged, row: RowKeys) -> list[Statement]:
        cid, version = row.customer_id, e.originator_version
        return [
            *self._present(e, row),
            # One fact per tag; a tag both added and removed ends removed, as in Customer.
            *(
                (_TAG, (cid, version, t, int(t not in e.removed), row.occurred_at, row.recorded_at))
                for t in sorted(set(e.added) | set(e.removed))
            ),
        ]

    def _purchase(self, e: ev.PurchaseRecorded, row: RowKeys) -> list[Statement]:
        return [*self._present(e, row), (
            "INSERT INTO {purchases} (customer_id, order_id, day, occurred_at, recorded_at, "
            "amount, currency, channel, staff, product_category) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.order_id, row.day, row.occurred_at, row.recorded_at, e.amount,
             e.currency, e.channel, e.staff, e.product_category),
        )]  # fmt: skip

    def _refund(self, e: ev.PurchaseRefunded, row: RowKeys) -> list[Statement]:
        return [*self._present(e, row), (
            "INSERT INTO {refunds} (customer_id, version, order_id, occurred_at, "
            "recorded_at, amount, currency) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, e.order_id, row.occurred_at, row.recorded_at,
             e.amount, e.currency),
        )]  # fmt: skip

    def _churn_fact(self, e: ev.CustomerEvent, kind: str, row: RowKeys) -> list[Statement]:
        return [*self._present(e, row), (
            "INSERT INTO {churn_facts} (customer_id, version, kind, day, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, kind, row.day, row.occurred_at,
             row.recorded_at),
        )]  # fmt: skip

    def _churned(self, e: ev.CustomerChurned, row: RowKeys) -> list[Statement]:
        return self._churn_fact(e, "churned", row)

    def _won_back(self, e: ev.CustomerWonBack, row: RowKeys) -> list[Statement]:
        return self._churn_fact(e, "won_back", row)

    def _points_fact(self, kind: str, e: ev.PointsGranted | ev.PointsRedeemed | ev.PointsExpired,
                     row: RowKeys, expires_on: str | None = None) -> list[Statement]:  # fmt: skip
        return [*self._present(e, row), (
            "INSERT INTO {points_facts} (customer_id, version, kind, points, expires_on, day, "
            "occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, kind, e.points, expires_on, row.day,
             row.occurred_at, row.recorded_at),
        )]  # fmt: skip

    def _points_granted(self, e: ev.PointsGranted, row: RowKeys) -> list[Statement]:
        expires = e.expires_on.isoformat() if e.expires_on else None
        return self._points_fact("granted", e, row, expires)

    def _points_redeemed(self, e: ev.PointsRedeemed, row: RowKeys) -> list[Statement]:
        return self._points_fact("redeemed", e, row)

    def _points_expired(self, e: ev.PointsExpired, row: RowKeys) -> list[Statement]:
        return self._points_fact("expired", e, row)

    def _erased(self, e: ev.PersonalDataErased, row: RowKeys) -> list[Statement]:
        return [
            *self._present(e, row),
            ("UPDATE {profile} SET erased = 1 WHERE customer_id = ?", (row.customer_id,)),
            ("DELETE FROM {tag_facts} WHERE customer_id = ?", (row.customer_id,)),
        ]
