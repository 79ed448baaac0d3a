"""Audit export and import: readable JSON Lines that re-import byte for byte, keys included."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain.errors import CustomerErased, ImportRefused
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import ERASED
from tests.helpers.clock import Clock
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres

REFS = ("C-1", "C-2", "C-3")


def populate(crm: CRM) -> None:
    """Three customers; C-2 is erased."""
    for i, ref in enumerate(REFS):
        crm.register_customer(
            external_ref=ref,
            name=f"客户{i}",
            email=f"{ref}@example.com",
            birthday="1988-07-0" + str(i + 1),
        )
        crm.record_purchase(customer=ref, order_id="O-1", amount="129.90", currency="CNY")
        crm.log_contact(customer=ref, channel="phone", direction="outbound", summary=f"回访 {ref}")
    crm.erase_personal_data(customer="C-2", requested_by="customer", reason="ticket 1")
    crm.grant_points(customer="C-3", points=100)


def export_file(crm: CRM, path: Path, **options: object) -> Path:
    with path.open("wb") as f:
        export_history(crm, f.write, **options)  # type: ignore[arg-type]
    return path


def rows(crm: CRM) -> dict[tuple[str, int], tuple[str, bytes]]:
    """Every stored event row, by (customer, version)."""
    found = {}
    for ref in REFS:
        for s in crm.recorder.select_events(customer_id_for_ref(ref)):
            found[(ref, s.originator_version)] = (s.topic, bytes(s.state))
    return found


def assert_same_store(source: CRM, target: CRM) -> None:
    assert rows(target) == rows(source)  # byte-identical rows
    assert verify(target).digest == verify(source).digest
    for ref in REFS:
        assert target.view(ref) == source.view(ref)


def test_an_export_imports_into_an_empty_store_with_the_same_states_and_digest(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        populate(source)
        export_file(source, path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["kind"] for line in lines[:3]] == ["header", "key", "event"]
    # 11 events and each customer's first purchase moving it to signed
    assert lines[-1] == {"kind": "end", "streams": 3, "events": 14, "digest": lines[-1]["digest"]}
    first = lines[2]
    assert first["record"]["type"] == "CustomerRegistered" and first["record"]["name"] == "客户0"
    assert first["record"]["summary"] == "registered C-1 客户0 (individual, potential)"
    assert {"topic", "state", "customer_id", "version"} <= set(first)
    erased_key = next(x for x in lines if x["kind"] == "key" and x["erased"])
    assert erased_key["key"] is None  # an erased customer's export holds only ciphertext
    c2 = [x for x in lines if x.get("customer_id") == erased_key["customer_id"]]
    assert all("客户1" not in json.dumps(x, ensure_ascii=False) for x in c2)

    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    with CRM(store_url) as source, CRM(target_url, snapshot_interval=4) as target:
        report = import_history(target, path)
        # streams of four events or more (all three here) get a snapshot after the import
        assert verify(target).snapshots == 3
        assert (report.streams, report.events, report.matches_export) == (3, 14, True)
        assert report.digest == lines[-1]["digest"] == verify(source).digest
        assert_same_store(source, target)
        assert target.get_customer("C-1").name == "客户0"  # keys came along
        assert target.get_customer("C-2").name is None  # and the erasure stayed
        with pytest.raises(CustomerErased):
            target.update_profile(customer="C-2", name="back again")


def test_a_sqlite_export_imports_into_postgresql_and_back(tmp_path: Path) -> None:
    require_postgres()
    sqlite_url = f"sqlite:///{tmp_path / 'crm.db'}"
    pg_url, schema = new_postgres_url()
    try:
        with CRM(sqlite_url) as source, CRM(pg_url) as target:
            populate(source)
            import_history(target, export_file(source, tmp_path / "a.jsonl"))
            assert_same_store(source, target)
            with CRM(f"sqlite:///{tmp_path / 'back.db'}") as back:
                import_history(back, export_file(target, tmp_path / "b.jsonl"))
                assert_same_store(source, back)
    finally:
        drop_schema(schema)


def test_import_refuses_a_store_that_already_has_those_customers(
    store_url: str, tmp_path: Path
) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        path = export_file(crm, tmp_path / "export.jsonl")
        head = crm.recorder.max_notification_id()
        with pytest.raises(ImportRefused, match=r"3 of the 3 customers .* already have events"):
            import_history(crm, path)
        assert crm.recorder.max_notification_id() == head


def test_import_refuses_an_altered_or_truncated_file_and_writes_nothing(
    store_url: str, tmp_path: Path
) -> None:
    with CRM(f"sqlite:///{tmp_path / 'source.db'}") as source:
        populate(source)
        path = export_file(source, tmp_path / "export.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    altered = tmp_path / "altered.jsonl"
    event = json.loads(lines[4])
    event["state"] = event["state"][:-8] + "AAAAAAA="  # a changed hash
    altered.write_text("\n".join([*lines[:4], json.dumps(event), *lines[5:]]), encoding="utf-8")
    with CRM(store_url) as target:
        with pytest.raises(ImportRefused, match="no end line"):
            import_history(target, truncated)
        with pytest.raises(ImportRefused, match=r"line 5: customer .* version \d: stored bytes"):
            import_history(target, altered)
        with pytest.raises(ImportRefused, match="not a crm-es audit export"):
            import_history(target, Path(__file__))
        assert target.recorder.max_notification_id() in (None, 0)


def test_known_at_exports_what_was_recorded_by_then(store_url: str) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    with CRM(store_url, clock=clock) as crm:
        crm.register_customer(external_ref="C-1", name="王芳")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="1", currency="CNY")
        clock.now = datetime(2026, 3, 1, tzinfo=UTC)
        crm.record_purchase(customer="C-1", order_id="O-2", amount="2", currency="CNY")
        crm.register_customer(external_ref="C-2")
        out = io.BytesIO()
        end = export_history(crm, out.write, known_at="2026-01-31")
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert (end.streams, end.events) == (1, 3)  # registered, bought, moved to signed
    assert records[0]["known_at"] == "2026-01-31T23:59:59.999999+00:00"
    assert [r["record"]["version"] for r in records if r["kind"] == "event"] == [1, 2, 3]


def test_an_export_of_one_customer_matches_its_own_verification(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        out = io.BytesIO()
        end = export_history(crm, out.write, customer="C-3")
        assert (end.streams, end.events, end.digest) == (1, 5, verify(crm, "C-3").digest)
    assert ERASED not in out.getvalue().decode()
