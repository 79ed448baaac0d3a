"""A merge's history checked from outside, on both stores: an imported history may not add to a
duplicate after its merge (but for an erasure or a refund of its orders), and ``audit verify``
names a merge event without its twin in the other customer's stream (a stream cut behind the
store's back after the merge: its chain still links up)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.decide.envelope import Batch, Envelope
from crm_es.domain.errors import ImportRefused
from crm_es.domain.ids import customer_id_for_ref
from tests.helpers.cli import run
from tests.helpers.raw_store import db_id, raw, table

A, B = customer_id_for_ref("C-A"), customer_id_for_ref("C-B")  # survivor, duplicate
DAY = "2026-01-02T09:00:00+08:00"


def merged(crm: CRM) -> None:
    for ref in ("C-A", "C-B"):
        crm.register_customer(external_ref=ref, name="王芳", occurred_at=DAY)
    crm.record_purchase(customer="C-B", order_id="O-2", amount="100.00", currency="CNY",
                        occurred_at="2026-01-05T10:00:00+08:00")  # fmt: skip
    crm.grant_points(customer="C-B", points=100, expires_on="2099-12-31", occurred_at=DAY)
    crm.merge_customers(customer="C-B", into="C-A", occurred_at="2026-02-01T10:00:00+08:00")


def forge_purchase(crm: CRM, ref: str) -> None:
    """A purchase saved on ``ref``'s stream without the decider (whose merge check refuses it),
    chained as the store chains every event."""
    state = crm.get_customer(ref)
    command = cmd.validate_command(cmd.command_from_fields(cmd.RecordPurchase, {
        "customer": ref, "order_id": "FORGED", "amount": "999.00", "currency": "CNY"}))  # fmt: skip
    envelope = Envelope.for_command(command, datetime.now(UTC), "user:mallory", crm.store.timezone)
    batch = Batch(state.id, state.version, envelope)
    batch.add(ev.PurchaseRecorded, order_id="FORGED", amount=99900, currency="CNY")
    crm.store.save(batch.events)


def test_an_imported_event_after_the_duplicates_merge_is_refused(
    store_url: str, tmp_path: Path
) -> None:
    with CRM(store_url) as crm:
        merged(crm)
        crm.refund_purchase(customer="C-B", order_id="O-2", amount="10.00")  # still allowed
        good = tmp_path / "good.jsonl"
        with good.open("wb") as f:
            export_history(crm, f.write)
        forge_purchase(crm, "C-B")
        assert verify(crm).ok  # the chain links up: only the history rules see it
        forged = tmp_path / "forged.jsonl"
        with forged.open("wb") as f:
            export_history(crm, f.write)
    with CRM(f"sqlite:///{tmp_path / 'good.db'}") as target:
        assert import_history(target, good).matches_export and verify(target).ok
    refused = pytest.raises(ImportRefused, match=f"closed by its merge into {A}")
    with CRM(f"sqlite:///{tmp_path / 'forged.db'}") as target, refused:
        import_history(target, forged)


def test_verify_names_a_merge_whose_twin_was_cut_from_the_other_stream(store_url: str) -> None:
    with CRM(store_url) as crm:
        merged(crm)
        survivor_side = [e.originator_version for e in crm.history("C-A")
                         if isinstance(e, ev.CustomersMerged | ev.PointsGranted)]  # fmt: skip
        assert verify(crm).ok and verify(crm, "C-B").ok
    for version in survivor_side:  # the survivor's last events: its chain stays whole
        raw(store_url, f"DELETE FROM {table(store_url)} "
            "WHERE originator_id = ? AND originator_version = ?",
            (db_id(store_url, "C-A"), version))  # fmt: skip
    raw(store_url, f"DELETE FROM {table(store_url, 'snapshots')} WHERE originator_id = ?",
        (db_id(store_url, "C-A"),))  # fmt: skip
    why = f"the merge of {B} into {A} has no twin in the survivor's stream ({A})"
    with CRM(store_url) as crm:
        for report in (verify(crm), verify(crm, "C-B")):  # one customer reads the other side
            assert not report.ok
            assert [(p.customer_id, p.problem) for p in report.problems] == [(str(B), why)]
        assert verify(crm, "C-A").problems == []  # the cut side alone shows nothing to see


def test_erasing_the_survivor_names_the_absorbed_customers_whose_data_is_kept(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        merged(crm)
        crm.register_customer(external_ref="C-C", name="王芳", occurred_at=DAY)
        crm.merge_customers(customer="C-C", into="C-A", occurred_at="2026-02-02T10:00:00+08:00")
        crm.erase_personal_data(customer="C-C", requested_by="customer")  # already forgotten
    code, out, _ = run(store_url, "erase", "C-A", "--reason", "ticket 9")
    result = json.loads(out)
    assert code == 0 and result["erased"] is True
    assert result["absorbed_not_erased"] == [{"customer_id": str(B), "external_ref": "C-B"}]
    assert "absorbed 1 customer(s) by a merge" in result["note"]
    code, out, _ = run(store_url, "erase", "C-B", "--reason", "ticket 9")
    assert code == 0 and "absorbed_not_erased" not in json.loads(out)


def test_an_import_of_one_side_of_a_merge_is_refused_unless_the_other_is_there(
    store_url: str, tmp_path: Path
) -> None:
    files = {ref: tmp_path / f"{ref}.jsonl" for ref in ("C-A", "C-B")}
    with CRM(store_url) as crm:
        merged(crm)
        for ref, path in files.items():
            with path.open("wb") as f:
                export_history(crm, f.write, customer=ref)
    lone = f"merged into customer {A}, which holds no twin of the merge in the file or in this"
    with CRM(f"sqlite:///{tmp_path / 'target.db'}") as target:
        head = target.recorder.max_notification_id()
        with pytest.raises(ImportRefused, match=re.escape(lone)):
            import_history(target, files["C-B"])
        assert target.recorder.max_notification_id() == head  # nothing stored
        import_history(target, files["C-A"])  # the survivor may come first
        assert [p.customer_id for p in verify(target).problems] == [str(A)]  # named till then
        import_history(target, files["C-B"])
        assert verify(target).ok and target.get_customer("C-B").merged_into == A
