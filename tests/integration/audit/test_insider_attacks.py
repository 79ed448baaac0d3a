"""Attacks by someone who can write to the database, found by a red team and closed: planted,
copied or clear keys, keys deleted under a compressing codec, reordered notification ids, a
deleted record of a command that changed nothing, planted payload hashes, forged imports. Each
is named by ``audit verify`` (with checkpoints where the attack hides from the chains) or
refused, on both stores."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm_es import CRM
from crm_es.audit.checkpoint_verify import verify_anchored
from crm_es.audit.checkpoints import anchor
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import events as ev
from crm_es.domain.errors import CrmError, IdempotencyConflict, ImportRefused
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.keys import KEY_TABLE
from crm_es.store.recorders import COMMANDS_TABLE
from tests.helpers.raw_store import db_id, raw, state_of, table
from tests.helpers.tamper import rehash_from

SIGNER = Ed25519PrivateKey.generate()


def problems_of(url: str, *anchors: Any) -> list[str]:
    with CRM(url) as crm:
        report = (verify_anchored(crm, list(anchors), SIGNER.public_key()) if anchors
                  else verify(crm))  # fmt: skip
    return [p.problem for p in report.problems]


def key_row(url: str, ref: str) -> str | None:
    rows = raw(url, f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?",
               (str(customer_id_for_ref(ref)),))  # fmt: skip
    return None if not rows or rows[0][0] is None else str(rows[0][0])


def put_key(url: str, ref: str, material: str) -> None:
    cid = str(customer_id_for_ref(ref))
    raw(url, f"DELETE FROM {KEY_TABLE} WHERE customer_id = ?", (cid,))
    raw(url, f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at) VALUES (?, ?, ?)",
        (cid, material, "2026-01-01T00:00:00+00:00"))  # fmt: skip


@pytest.fixture
def store(store_url: str) -> Iterator[str]:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name="Alice", command_id="cmd-1")
        crm.change_tags(customer="C-1", add=["vipalice"], command_id="cmd-2")
        crm.register_customer(external_ref="C-2", name="Bob", command_id="cmd-3")
    yield store_url


def test_a_clear_key_planted_for_a_customer_is_named_and_never_used(store: str) -> None:
    put_key(store, "C-1", "k1:" + base64.b64encode(b"A" * 32).decode())
    assert any("not one this store wrapped" in p for p in problems_of(store))
    with CRM(store) as crm, pytest.raises(CrmError, match="not wrapped by this store"):
        crm.view("C-1")


def test_a_clear_key_planted_for_a_future_customer_is_refused(store: str) -> None:
    put_key(store, "C-9", "k1:" + base64.b64encode(b"A" * 32).decode())
    with CRM(store) as crm:
        before = crm.recorder.max_notification_id()
        with pytest.raises(CrmError, match="not wrapped by this store"):
            crm.register_customer(external_ref="C-9", name="Carol Future Secret")
        assert crm.recorder.max_notification_id() == before
    assert any("not one this store wrapped" in p for p in problems_of(store))


def test_a_key_copied_from_another_customer_is_named(store: str) -> None:
    put_key(store, "C-2", key_row(store, "C-1") or "")
    assert any("not one this store wrapped" in p for p in problems_of(store))


def test_a_key_deleted_under_a_compressing_codec_is_named(store_url: str) -> None:
    env = {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}
    with CRM(store_url, env=env) as crm:
        crm.register_customer(external_ref="C-1", name="Alice")
        items = [{"sku": f"S-{i}", "name": f"礼盒 {i} for Alice"} for i in range(40)]
        crm.record_purchase(
            customer="C-1", order_id="O-1", amount="9", currency="CNY", items=items
        )  # compressed: well over the codec's threshold
    raw(store_url, f"UPDATE {KEY_TABLE} SET key_material = NULL")
    with CRM(store_url, env=env) as crm:
        found = [p.problem for p in verify(crm).problems]
    assert any("deleted without a PersonalDataErased" in p for p in found)


def test_notification_ids_reordered_inside_a_stream_are_named(store: str) -> None:
    events = table(store)
    column = "rowid" if store.startswith("sqlite") else "notification_id"
    cid = db_id(store, "C-1")
    ids = dict(raw(store, f"SELECT originator_version, {column} FROM {events} "
                   "WHERE originator_id = ?", (cid,)))  # fmt: skip
    first, second = ids[1], ids[2]
    parked = -first  # a free id while the two change places
    for old, new in ((first, parked), (second, first), (parked, second)):
        raw(store, f"UPDATE {events} SET {column} = ? WHERE {column} = ?", (new, old))
    assert any("stored before version" in p for p in problems_of(store))


def test_the_deleted_record_of_a_command_that_changed_nothing_is_named(store: str) -> None:
    with CRM(store) as crm:
        crm.change_tags(customer="C-1", add=["vipalice"], command_id="noop-1")  # no event
        signed = anchor(crm, SIGNER)
        crm.change_tags(customer="C-1", remove=["vipalice"], command_id="cmd-4")  # after it
    assert problems_of(store, signed) == []
    raw(store, f"DELETE FROM {COMMANDS_TABLE} WHERE command_id = ?", ("noop-1",))
    assert any("changed nothing" in p for p in problems_of(store, signed))


def test_a_planted_plain_payload_hash_answers_nothing_as_done(store: str) -> None:
    digest = bytes(range(32))  # a plain SHA-256, as an older version wrote them
    raw(store, f"INSERT INTO {COMMANDS_TABLE} (command_id, payload_hash, customer_id, version, "
        "events, position) VALUES (?, ?, ?, ?, ?, ?)",
        ("csv:purchase:C-1:O-9", digest, str(customer_id_for_ref("C-1")), 3, 0, 10**9))  # fmt: skip
    with CRM(store) as crm, pytest.raises(IdempotencyConflict):
        crm.record_purchase(customer="C-1", order_id="O-9", amount="10", currency="CNY",
                            command_id="csv:purchase:C-1:O-9")  # fmt: skip
    assert any("payload hash" in p for p in problems_of(store))


def _forged_export(url: str, tmp: Path, field_values: dict[str, Any]) -> Path:
    """An export of a store whose C-1 version 3 was rewritten (and every hash after it)."""
    with CRM(url) as crm:
        crm.file_complaint(customer="C-1", complaint_id="K-1", category="x", severity="low")
        crm.resolve_complaint(customer="C-1", complaint_id="K-1", resolution="ok")
        event = next(e for e in crm.history("C-1") if isinstance(e, ev.ComplaintResolved))
        original = state_of(url, "C-1", event.originator_version)
        changed = msgspec.structs.replace(event, **field_values)
        rehash_from(url, "C-1", event.originator_version,
                    crm.store.codec.encode(changed, original[4:36]).state)  # fmt: skip
    path = tmp / "forged.jsonl"
    with CRM(url) as crm, path.open("wb") as f:
        export_history(crm, f.write)
    return path


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"compensation": -(10**17), "compensation_currency": "CNY"}, "out of bounds"),
        ({"originator_version": 58}, "another customer or version"),
        ({"recorded_at": datetime(2099, 1, 1, tzinfo=UTC)}, "recorded after the time"),
    ],
)
def test_an_import_of_a_forged_history_is_refused(
    store: str, tmp_path: Path, sqlite_url: str, fields: dict[str, Any], why: str
) -> None:
    path = _forged_export(store, tmp_path, fields)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with CRM(target) as crm, pytest.raises(ImportRefused, match=why):
        import_history(crm, path)


def test_an_import_keeps_exactly_once_and_verifies(store: str, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store) as crm, path.open("wb") as f:
        export_history(crm, f.write)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with CRM(target) as crm:
        import_history(crm, path)
        assert verify(crm).problems == []
        again = crm.change_tags(customer="C-1", add=["vipalice"], command_id="cmd-2")
        assert again.duplicate  # answered as done, not applied a second time
        versions = [e.originator_version for e in crm.history("C-1")]
    assert versions == [1, 2]


def test_an_export_cut_before_a_later_erasure_imports_and_verifies(
    store: str, tmp_path: Path
) -> None:
    cut = datetime.now(UTC)
    with CRM(store) as crm:
        crm.erase_personal_data(customer="C-1", requested_by="dpo")
    path = tmp_path / "export.jsonl"
    with CRM(store) as crm, path.open("wb") as f:
        export_history(crm, f.write, known_at=cut)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with CRM(target) as crm:
        import_history(crm, path)
        assert verify(crm).problems == []
        assert crm.view("C-1")["profile"]["name"] == "[erased]"
