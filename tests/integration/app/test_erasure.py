"""Erasure: the key is deleted, history stays complete and verifiable, PII reads ``[erased]``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.history import event_record, summarize
from crm_es.audit.verify import verify
from crm_es.domain.commands import ErasePersonalData
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.errors import CustomerErased, InvalidState
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import ERASED
from crm_es.projections import ProjectionEngine, read_models
from crm_es.store.keys import KEY_TABLE
from tests.helpers.personal_data import BIRTHDAY, EMAIL, NAME, PHONE, SECRETS, fill, settle_wipe
from tests.helpers.raw_store import raw


def erase(crm: CRM, ref: str = "C-1") -> None:
    crm.erase_personal_data(
        customer=ref, requested_by="customer", legal_basis="PIPL Art. 47", reason="ticket 42"
    )
    settle_wipe(crm)


def test_erasure_keeps_history_and_verification_but_personal_fields_read_erased(
    store_url: str,
) -> None:
    with CRM(store_url, snapshot_interval=4) as crm:
        fill(crm)
        crm.register_customer(external_ref="C-2", name="李雷")
        before = [event_record(e) for e in crm.history("C-1")]
        erase(crm)
        report = verify(crm)
        assert report.ok and report.events == len(before) + 2  # hashes cover the ciphertext
        view = crm.view("C-1")
        assert view["erased"] is True
        assert {
            f: view["profile"][f] for f in ("name", "email", "phone", "birthday")
        } == dict.fromkeys(("name", "email", "phone", "birthday"), ERASED)
        assert view["profile"]["region"] == "华东" and view["open_complaints"] == []
        after = [event_record(e) for e in crm.history("C-1")]
        assert len(after) == len(before) + 1
        last = after[-1]
        assert (last["type"], last["actor"], last["reason"], last["requested_by"]) == (
            "PersonalDataErased", "api:python", "ticket 42", "customer"
        )  # fmt: skip
        assert after[0]["name"] == after[0]["email"] == after[0]["birthday"] == ERASED
        assert after[0]["region"] == "华东" and after[0]["external_ref"] == "C-1"
        assert after[2]["summary"] == ERASED and after[2]["channel"] == "phone"
        assert summarize(next(iter(crm.history("C-1")))).startswith("registered C-1 [erased]")
        # Versions at or before the erasure read the same way: the key is gone for all of them.
        assert crm.get_customer("C-1", version=1).name == ERASED
        out = io.BytesIO()
        export_history(crm, out.write, customer="C-1")
        assert not any(s.encode() in out.getvalue() for s in SECRETS)
        assert crm.get_customer("C-2").name == "李雷"  # other customers keep theirs


def test_after_erasure_no_read_model_holds_the_customers_personal_data(store_url: str) -> None:
    def scan(crm: CRM) -> list[tuple[str, Any]]:
        engine = ProjectionEngine(crm, read_models())
        try:
            engine.catch_up_all()
        finally:
            engine.close()
        tables = raw(
            store_url,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            if store_url.startswith("postgres")
            else "SELECT name FROM sqlite_master WHERE type = 'table'",
        )
        cells = []
        for (name,) in tables:
            if str(name).startswith("rm_"):
                for row in raw(store_url, f"SELECT * FROM {name}"):
                    cells.extend((str(name), cell) for cell in row)
        return cells

    personal = (NAME, EMAIL, EMAIL.upper(), PHONE, BIRTHDAY, BIRTHDAY[5:])
    with CRM(store_url) as crm:
        fill(crm)
        before = scan(crm)
        assert any(cell == BIRTHDAY[5:] for _, cell in before)  # the care agenda had it …
        erase(crm)
        after = scan(crm)
        assert [(t, c) for t, c in after if c in personal or str(c) in personal] == []  # … no more
        engine = ProjectionEngine(crm, read_models())  # a rebuild from scratch holds none either
        try:
            for name in engine.models:
                engine.rebuild(name)
        finally:
            engine.close()
        rebuilt = scan(crm)
        assert [(t, c) for t, c in rebuilt if str(c) in personal] == []


def test_commands_that_need_personal_data_fail_after_erasure_and_others_still_work(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        erase(crm)
        with pytest.raises(CustomerErased, match="has had personal data erased; cannot store"):
            crm.update_profile(customer="C-1", email="new@example.com")
        with pytest.raises(CustomerErased):
            crm.log_contact(customer="C-1", channel="phone", direction="inbound", summary="hi")
        crm.log_contact(customer="C-1", channel="phone", direction="inbound")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="5", currency="CNY")
        assert crm.get_customer("C-1").paid == {"CNY": 500}
        assert verify(crm).ok


def test_erasing_twice_is_a_clear_error(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        erase(crm)
        with pytest.raises(InvalidState, match="has already been erased; nothing to do"):
            erase(crm)
        assert crm.get_customer("C-1").version == 2


def test_an_erasure_interrupted_after_its_event_is_finished_by_erasing_again(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        # The state a crash leaves between the two steps: the event saved, the key not deleted.
        command = ErasePersonalData(customer="C-1", requested_by="customer")
        customer = crm.get_customer("C-1")
        envelope = Envelope.for_command(command, crm.clock(), "api:python")
        crm.save(*decide(customer, command, envelope, customer.id))
        report = verify(crm)
        assert not report.ok and "erasure unfinished" in report.problems[0].problem
        assert crm.store.personal_data.key(customer.id) is not None
        result = crm.erase_personal_data(customer="C-1", requested_by="customer")
        assert (result.events, result.version) == (0, 2)  # nothing appended: the job is finished
        assert crm.store.personal_data.key(customer.id) is None
        assert crm.get_customer("C-1", version=1).name == ERASED
        settle_wipe(crm)
        assert verify(crm).ok
        with pytest.raises(InvalidState, match="already been erased"):
            erase(crm)


def test_another_crm_in_the_process_stops_decrypting_once_the_key_is_deleted(
    store_url: str,
) -> None:
    with CRM(store_url) as writer, CRM(store_url) as reader:
        writer.register_customer(external_ref="C-1", name=NAME)
        assert next(iter(reader.history("C-1"))).name == NAME  # type: ignore[attr-defined]
        erase(writer)
        assert next(iter(reader.history("C-1"))).name == ERASED  # type: ignore[attr-defined]


def test_the_deleted_key_leaves_the_sqlite_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with CRM(url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        material = str(raw(url, f"SELECT key_material FROM {KEY_TABLE}")[0][0])
        key_b64 = material[3:].encode()
        assert any(key_b64 in f.read_bytes() for f in tmp_path.glob("crm.db*"))
        erase(crm)
        assert [f.name for f in tmp_path.glob("crm.db*") if key_b64 in f.read_bytes()] == []
        rows = raw(url, f"SELECT key_material, erased_at FROM {KEY_TABLE}")
        assert rows[0][0] is None and rows[0][1]  # a tombstone remains
    assert json.dumps(customer_view_of(url)).count(ERASED) == 4


def customer_view_of(url: str) -> dict[str, Any]:
    with CRM(url) as crm:
        return crm.view(customer_id_for_ref("C-1"))
