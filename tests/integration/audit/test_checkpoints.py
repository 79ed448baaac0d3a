"""Signed checkpoints against an insider with write access to the database, through the CLI.

Each test takes a checkpoint (``crm-es audit anchor``), attacks the stored rows the way someone
holding the database could, and runs ``crm-es audit verify --anchors`` with the public key: it
must fail and name the customer (and version where there is one). Appending commands after a
checkpoint never makes it fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.keys import KEY_TABLE
from crm_es.store.recorders import COMMANDS_TABLE
from tests.helpers.cli import run
from tests.helpers.raw_store import db_id, raw, state_of, table
from tests.helpers.tamper import delete_rows, flip_byte, rehash_from, swap

C2 = str(customer_id_for_ref("C-2"))


class Audited:
    """A store with three customers, a signing key, and one checkpoint taken."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        self.key, self.anchors = folder / "signing.pem", folder / "anchors.jsonl"
        code, out, err = run(url, "audit", "signing-key", "--out", str(self.key))
        assert code == 0, err
        self.public = folder / "audit.pub"
        self.public.write_text(out)
        with CRM(url, snapshot_interval=3) as crm:
            for ref in ("C-1", "C-2", "C-3"):
                # signed already: five events each, no category move on the first purchase
                crm.register_customer(external_ref=ref, name=f"客户 {ref}", category="signed")
                for i in range(4):
                    crm.record_purchase(
                        customer=ref, order_id=f"O-{i}", amount="9.90", currency="CNY",
                        command_id=f"{ref}-buy-{i}",
                    )  # fmt: skip
                crm.change_tags(customer=ref, add=[], command_id=f"{ref}-noop")  # a no-op
        self.anchor()

    def anchor(self) -> None:
        code, _, err = run(
            self.url, "audit", "anchor", "--out", str(self.anchors), "--signing-key", str(self.key)
        )
        assert code == 0, err

    def verify(self) -> tuple[int, dict[str, Any], str]:
        code, out, err = run(
            self.url, "audit", "verify", "--anchors", str(self.anchors),
            "--public-key", str(self.public),
        )  # fmt: skip
        return code, json.loads(out) if out.strip() else {}, err

    def problems(self) -> list[tuple[str, int, str]]:
        code, report, err = self.verify()
        assert code == 1, err
        return [(p["customer_id"], p["version"], p["problem"]) for p in report["problems"]]


@pytest.fixture
def audited(store_url: str, tmp_path: Path) -> Iterator[Audited]:
    yield Audited(store_url, tmp_path)


def named(problems: list[tuple[str, int, str]], customer: str, words: str) -> bool:
    return any(cid == customer and words in what for cid, _, what in problems)


def test_an_untouched_store_verifies_against_its_checkpoint(audited: Audited) -> None:
    code, report, err = audited.verify()
    assert code == 0 and report["ok"] is True, err


def test_commands_appended_after_a_checkpoint_never_make_it_fail(audited: Audited) -> None:
    with CRM(audited.url, snapshot_interval=3) as crm:
        for ref in ("C-1", "C-4"):
            if ref == "C-4":
                crm.register_customer(external_ref=ref)
            crm.grant_points(customer=ref, points=5, command_id=f"{ref}-later")
            crm.change_tags(customer=ref, add=[], command_id=f"{ref}-noop-later")
    audited.anchor()
    with CRM(audited.url) as crm:
        list(crm.execute_many([]))
        crm.log_contact(customer="C-2", channel="sms", direction="outbound")
    code, report, err = audited.verify()
    assert code == 0 and report["ok"] is True, err


def test_a_flipped_byte_is_named(audited: Audited) -> None:
    flip_byte(audited.url, "C-2", 3)
    assert (C2, 3, "stored bytes were altered: the event's hash does not match") in (
        audited.problems()
    )


def test_a_deleted_event_is_named(audited: Audited) -> None:
    url = audited.url
    delete_rows(url, table(url), "originator_id = ? AND originator_version = ?",
                (db_id(url, "C-2"), 3))  # fmt: skip
    problems = audited.problems()
    assert named(problems, C2, "version 3 is missing")


def test_a_deleted_tail_is_named_although_the_shorter_chain_is_valid(audited: Audited) -> None:
    url = audited.url
    delete_rows(url, table(url), "originator_id = ? AND originator_version >= ?",
                (db_id(url, "C-2"), 5))  # fmt: skip
    assert named(audited.problems(), C2, "events deleted: it covered versions up to 5, 4 remain")


def test_two_swapped_events_are_named(audited: Audited) -> None:
    swap(audited.url, "C-2", 2, 3)
    assert named(audited.problems(), C2, "version")


def test_a_rewritten_event_with_every_later_hash_recomputed_is_named(audited: Audited) -> None:
    """The chain links up again: only the checkpoint shows it."""
    url = audited.url
    original = state_of(url, "C-2", 2)
    with CRM(url) as crm:
        event = next(e for e in crm.history("C-2") if e.originator_version == 2)
        changed = msgspec.structs.replace(event, amount=99_999_999)  # type: ignore[call-arg]
        forged = crm.store.codec.encode(changed, original[4:36]).state
    rehash_from(url, "C-2", 2, forged)
    problems = audited.problems()
    assert named(problems, C2, "its events up to version 5 changed")
    assert not any("hash does not match" in p for _, _, p in problems)  # the chain is intact


def test_a_deleted_snapshot_is_named(audited: Audited) -> None:
    url = audited.url
    delete_rows(url, table(url, "snapshots"), "originator_id = ?", (db_id(url, "C-2"),))
    assert named(audited.problems(), C2, "a snapshot it covered was deleted")


def test_a_forged_snapshot_is_named(audited: Audited) -> None:
    url = audited.url
    state = bytearray(state_of(url, "C-2", 3, "snapshots"))
    state[50] ^= 0x01
    raw(url, f"UPDATE {table(url, 'snapshots')} SET state = ? WHERE originator_id = ?",
        (bytes(state), db_id(url, "C-2")))  # fmt: skip
    problems = audited.problems()
    assert named(problems, C2, "snapshot forged or altered")


def test_a_customer_who_exists_only_as_a_snapshot_is_named(audited: Audited) -> None:
    url = audited.url
    ghost = "GHOST"
    row = raw(url, f"SELECT topic, state FROM {table(url, 'snapshots')} WHERE originator_id = ?",
              (db_id(url, "C-1"),))[0]  # fmt: skip
    raw(url, f"INSERT INTO {table(url, 'snapshots')} (originator_id, originator_version, topic, "
        "state, position) VALUES (?, 3, ?, ?, 1)", (db_id(url, ghost), row[0], bytes(row[1])))  # fmt: skip
    problems = audited.problems()
    assert named(problems, str(customer_id_for_ref(ghost)), "exists only as a snapshot")


def test_a_deleted_key_row_without_an_erasure_is_named(audited: Audited) -> None:
    delete_rows(audited.url, KEY_TABLE, "customer_id = ?", (C2,))
    assert named(audited.problems(), C2, "key was deleted without a PersonalDataErased event")


def test_a_deleted_idempotency_record_is_named(audited: Audited) -> None:
    delete_rows(audited.url, COMMANDS_TABLE, "command_id = ?", ("C-2-buy-1",))
    problems = audited.problems()
    assert named(problems, C2, "the idempotency record of command 'C-2-buy-1' is missing")
    assert named(problems, C2, "an idempotency record it covered was deleted")


def test_a_deleted_record_of_a_command_that_changed_nothing_is_named(audited: Audited) -> None:
    """No event holds its id: only the checkpoint knows it was there."""
    delete_rows(audited.url, COMMANDS_TABLE, "command_id = ?", ("C-2-noop",))
    assert named(audited.problems(), C2, "an idempotency record it covered was deleted")


def test_a_forged_checkpoint_is_named(audited: Audited) -> None:
    line = json.loads(audited.anchors.read_text().splitlines()[0])
    line["checkpoint"]["root"] = "00" * 32
    audited.anchors.write_text(json.dumps(line) + "\n")
    assert any("checkpoint 1: its signature does not verify" in p for _, _, p in audited.problems())


def test_a_checkpoint_signed_with_another_key_is_named(audited: Audited, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    run(audited.url, "audit", "signing-key", "--out", str(other))
    run(audited.url, "audit", "anchor", "--out", str(audited.anchors), "--signing-key", str(other))
    assert any("checkpoint 2: its signature does not verify" in p for _, _, p in audited.problems())
