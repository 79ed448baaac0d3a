"""Distinctive personal values put everywhere personal data can go; finding any of them in the
raw store, a file or an export means personal data leaked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crm_es import CRM
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.wipe import finish_pending_wipe

# Distinctive values: any of them found in the raw store means personal data leaked.
NAME, EMAIL, PHONE, BIRTHDAY = (
    "欧阳娜娜",
    "nana.ouyang@example.org",
    "+86 139 1234 5678",
    "1987-11-29",
)


FREE_TEXT = "欧阳娜娜 called about her neighbour's address"


SECRETS = (NAME, EMAIL, PHONE, BIRTHDAY, FREE_TEXT, "nana.ouyang", "1234 5678")


# A tag a person might write: a name in a tag is personal data like any other free text.
TAG = "nana.ouyang"


def fill(crm: CRM, *, registered: bool = False) -> None:
    """Personal data in every place it can go: registration, profile, every free text (the
    envelope's reason included), tags, line items, snapshots. ``registered``: C-1 exists."""
    if not registered:
        crm.register_customer(
            external_ref="C-1", name=NAME, email=EMAIL, phone=PHONE, birthday=BIRTHDAY,
            region="华东",
        )  # fmt: skip
    crm.update_profile(customer="C-1", email=EMAIL.upper())
    crm.log_contact(
        customer="C-1", channel="phone", direction="inbound", summary=FREE_TEXT,
        feedback=FREE_TEXT, outcome=FREE_TEXT, reason=FREE_TEXT,
    )  # fmt: skip
    crm.record_service(customer="C-1", phase="after-sale", kind="delivery", summary=FREE_TEXT)
    crm.file_complaint(
        customer="C-1", complaint_id="K-1", category="delivery", severity="high",
        description=FREE_TEXT,
    )  # fmt: skip
    crm.resolve_complaint(customer="C-1", complaint_id="K-1", resolution=FREE_TEXT)
    crm.follow_up_complaint(customer="C-1", complaint_id="K-1", satisfied=False, note=FREE_TEXT)
    crm.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=2, comment=FREE_TEXT)
    crm.answer_survey(
        customer="C-1", survey_id="S-2", metric="csat", score=1, topic="delivery",
        comment=FREE_TEXT, reason=FREE_TEXT,
    )  # fmt: skip
    crm.log_contact(customer="C-1", channel="email", direction="outbound", summary=FREE_TEXT)
    # Sales opportunities: the title and a loss's note are free texts, the reason too.
    crm.open_opportunity(
        customer="C-1", opportunity_id="OP-1", title=FREE_TEXT, amount="100.00", currency="CNY",
        reason=FREE_TEXT,
    )  # fmt: skip
    crm.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="proposal",
                            reason=FREE_TEXT)  # fmt: skip
    crm.lose_opportunity(customer="C-1", opportunity_id="OP-1", lost_reason="price", note=FREE_TEXT)
    crm.open_opportunity(
        customer="C-1", opportunity_id="OP-2", title=f"{NAME} {PHONE}", amount="10.00",
        currency="CNY",
    )  # fmt: skip
    crm.schedule_care_task(
        customer="C-1", task_id="T-1", kind="birthday_greeting", due_on="2026-11-29", note=FREE_TEXT
    )
    crm.complete_care_task(customer="C-1", task_id="T-1", note=FREE_TEXT, outcome=FREE_TEXT)
    crm.record_purchase(
        customer="C-1", order_id="O-1", amount="10.00", currency="CNY",
        items=[{"sku": "GIFT-1", "name": f"engraved for {NAME}"}],
    )  # fmt: skip
    crm.win_opportunity(customer="C-1", opportunity_id="OP-2", order_id="O-1", reason=FREE_TEXT)
    crm.grant_points(customer="C-1", points=10, reason=FREE_TEXT)
    crm.change_tags(customer="C-1", add=[TAG])
    crm.change_tags(customer="C-1", add=["vip"], remove=[TAG])
    crm.churn_customer(customer="C-1", churn_reason=FREE_TEXT)
    crm.take_snapshot(customer_id_for_ref("C-1"))


def leaks(data: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in data or s.upper().encode() in data]


def sqlite_bytes(tmp_path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(tmp_path.glob("crm.db*"))}


def settle_wipe(crm: Any) -> None:
    """Finish a wipe an older reader held back, as ``crm-es maintain`` does: on a shared
    PostgreSQL server another session's transaction may be that reader for a moment (the wipe
    itself is tested in test_erasure_wipe.py)."""
    for _ in range(50):
        if finish_pending_wipe(crm.store.db) is not False:
            return
        time.sleep(0.1)
