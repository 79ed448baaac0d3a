"""The access log of personal-data reads, on both stores: recorded and listed by customer and by
principal, append-only and tamper-evident (a deleted, edited or moved row is named by
``audit verify``, and by ``audit verify --anchors`` when its chain was rewritten), one chain
under two writing processes, kept after an erasure, and a data subject's access request that
holds the customer's personal data and the reads of it."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm_es import CRM
from crm_es.app.subject_access import subject_access
from crm_es.audit.checkpoint_verify import verify_anchored
from crm_es.audit.checkpoints import FORMAT, Anchor, anchor, message
from crm_es.audit.verify import verify
from crm_es.domain.errors import CustomerNotFound, InvalidValue, PermissionDenied
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.principals import Principal, Role
from crm_es.domain.values import ERASED
from crm_es.projections import ProjectionEngine, read_models
from crm_es.store.access_log import ACCESS_TABLE, GENESIS, AccessEntry, chain
from tests.helpers.personal_data import settle_wipe
from tests.helpers.raw_store import raw

SIGNER = Ed25519PrivateKey.generate()
DPO = Principal(name="user:dpo", roles=frozenset({Role.PRIVACY_OFFICER}))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
C1, C2 = customer_id_for_ref("C-1"), customer_id_for_ref("C-2")


_OPEN: dict[str, CRM] = {}  # the test's open CRM, by URL: opening one per check is slow


@pytest.fixture
def logged(store_url: str) -> Iterator[str]:
    """Two customers and six reads: rows 1..6."""
    with CRM(store_url) as crm:
        _OPEN[store_url] = crm
        crm.register_customer(external_ref="C-1", name="王芳", email="wang@example.cn",
                              birthday="1990-06-05")  # fmt: skip
        crm.register_customer(external_ref="C-2", name="李雷")
        log = crm.store.access_log
        log.record("user:li", [C1], "show", ["name", "email"], "call back", at=T0)
        log.record("user:li", [C1, C2], "export", ["name"], at=T0 + timedelta(minutes=1))
        log.record("user:wu", [C2], "history", ["name", "reason"], "ticket 7",
                   at=T0 + timedelta(minutes=2))  # fmt: skip
        log.record("user:wu", [C1], "show", ["phone"], at=T0 + timedelta(minutes=3))
        log.record("user:li", [C2], "show", ["name"], at=T0 + timedelta(minutes=4))
        try:
            yield store_url
        finally:
            del _OPEN[store_url]


@contextmanager
def opened(url: str) -> Iterator[CRM]:
    """The test's CRM when it has one open, else a new one for the block."""
    if url in _OPEN:
        yield _OPEN[url]
        return
    with CRM(url) as crm:
        yield crm


def problems_of(url: str, *anchors: Anchor) -> list[str]:
    with opened(url) as crm:
        report = (verify_anchored(crm, list(anchors), SIGNER.public_key()) if anchors
                  else verify(crm))  # fmt: skip
    return [p.problem for p in report.problems]


def take_anchor(url: str) -> Anchor:
    with opened(url) as crm:
        return anchor(crm, SIGNER)


def stored(url: str) -> list[tuple[AccessEntry, str]]:
    rows = raw(url, f"SELECT seq, at, principal, customer_id, action, fields, purpose, hash "
                    f"FROM {ACCESS_TABLE} ORDER BY seq")  # fmt: skip
    return [
        (AccessEntry(int(s), a, p, c, x, msgspec.json.decode(f, type=list[str]), u), h)
        for s, a, p, c, x, f, u, h in rows
    ]


def rehash(url: str) -> None:
    """Recompute every stored hash from the rows as they are now, as a forger who knows the
    (public) hashing would: the chain links up again."""
    previous = GENESIS
    for entry, _ in stored(url):
        previous = chain(previous, entry)
        raw(url, f"UPDATE {ACCESS_TABLE} SET hash = ? WHERE seq = ?", (previous.hex(), entry.seq))


def edit(url: str, seq: int) -> None:
    raw(url, f"UPDATE {ACCESS_TABLE} SET principal = ? WHERE seq = ?", ("user:nobody", seq))


def delete(url: str, seq: int) -> None:
    raw(url, f"DELETE FROM {ACCESS_TABLE} WHERE seq = ?", (seq,))


def move(url: str, first: int, second: int) -> None:
    """Swap two rows' places (each keeps its own contents and hash, under the other's number)."""
    raw(url, f"UPDATE {ACCESS_TABLE} SET seq = -1 WHERE seq = ?", (first,))
    raw(url, f"UPDATE {ACCESS_TABLE} SET seq = ? WHERE seq = ?", (first, second))
    raw(url, f"UPDATE {ACCESS_TABLE} SET seq = ? WHERE seq = -1", (second,))


# --- recording and listing ------------------------------------------------------------------


def test_reads_are_listed_by_customer_by_principal_and_both_in_log_order(logged: str) -> None:
    with opened(logged) as crm:
        log = crm.store.access_log
        of_c1 = log.entries(customer_id=C1)
        by_li = log.entries(by="user:li")
        both = log.entries(customer_id=C2, by="user:li")
        everything = log.entries()
    assert [(e.seq, e.principal, e.action) for e in of_c1] == [
        (1, "user:li", "show"), (2, "user:li", "export"), (5, "user:wu", "show")]  # fmt: skip
    assert of_c1[0] == AccessEntry(1, T0.isoformat(), "user:li", str(C1), "show",
                                   ["name", "email"], "call back")  # fmt: skip
    assert [e.seq for e in by_li] == [1, 2, 3, 6]
    assert [e.seq for e in both] == [3, 6]
    assert [e.seq for e in everything] == [1, 2, 3, 4, 5, 6]
    assert everything[3].purpose == "ticket 7" and everything[1].purpose is None


def test_a_read_of_several_customers_is_one_row_each_with_the_same_time(logged: str) -> None:
    with opened(logged) as crm:
        rows = [e for e in crm.store.access_log.entries() if e.action == "export"]
    assert [e.customer_id for e in rows] == [str(C1), str(C2)]
    assert rows[0].at == rows[1].at == (T0 + timedelta(minutes=1)).isoformat()


def test_times_are_kept_in_utc_and_nothing_is_recorded_for_no_customer(store_url: str) -> None:
    with CRM(store_url) as crm:
        log = crm.store.access_log
        log.record("user:li", [], "show", ["name"])
        shanghai = datetime(2026, 3, 1, 17, 0, tzinfo=UTC).astimezone()
        log.record("user:li", [C1], "show", ["name"], at=shanghai)
        assert [e.at for e in log.entries()] == ["2026-03-01T17:00:00+00:00"]


BAD_ENTRIES = [
    ("", "show", ["name"], None, None),
    ("user:li", " ", ["name"], None, None),
    ("user:li", "show", ["na\nme"], None, None),
    ("user:li", "show", ["name"] * 101, None, None),
    ("user:li", "show", ["name"], "x" * 501, None),
    ("user:li", "show", ["name"], None, datetime(2026, 3, 1)),
]


def test_a_bad_entry_is_refused_and_stores_nothing(sqlite_url: str) -> None:
    with CRM(sqlite_url) as crm:
        for principal, action, fields, purpose, at in BAD_ENTRIES:
            with pytest.raises(InvalidValue):
                crm.store.access_log.record(principal, [C1], action, fields, purpose, at)
        assert crm.store.access_log.entries() == []


def test_rows_hold_no_personal_values_and_outlive_an_erasure(logged: str) -> None:
    with opened(logged) as crm:
        crm.erase_personal_data(customer="C-1", requested_by="customer", reason="asked")
        settle_wipe(crm)
        assert len(crm.store.access_log.entries(customer_id=C1)) == 3
    cells = " ".join(str(c) for row in raw(logged, f"SELECT * FROM {ACCESS_TABLE}") for c in row)
    assert "王芳" not in cells and "wang@example.cn" not in cells
    assert problems_of(logged) == []


# --- tamper evidence without checkpoints ----------------------------------------------------


def test_an_untouched_log_verifies(logged: str) -> None:
    assert problems_of(logged) == []
    assert problems_of(logged, take_anchor(logged)) == []


def test_audit_verify_names_an_edited_row(logged: str) -> None:
    edit(logged, 3)
    assert problems_of(logged) == [
        "access log: row 3: its hash does not match its contents and the previous row's hash "
        "(it, or the row before it, was altered or moved)"
    ]


def test_audit_verify_names_a_deleted_row(logged: str) -> None:
    delete(logged, 2)
    delete(logged, 4)
    delete(logged, 5)
    assert problems_of(logged) == [
        "access log: row 2 is missing (deleted behind the store's back)",
        "access log: row 4..5 is missing (deleted behind the store's back)",
    ]


def test_audit_verify_names_moved_rows(logged: str) -> None:
    move(logged, 2, 4)
    found = problems_of(logged)
    # Each moved row, and the row after each (whose link to the row before it broke).
    assert [p.split(":")[1] for p in found] == [" row 2", " row 3", " row 4", " row 5"]
    assert all("altered or moved" in p for p in found)


# --- tamper evidence with checkpoints -------------------------------------------------------


def test_a_rewritten_chain_hides_from_verify_but_not_from_a_checkpoint(logged: str) -> None:
    signed = take_anchor(logged)
    assert signed.checkpoint.format == FORMAT and signed.checkpoint.access_rows == 6
    edit(logged, 3)
    rehash(logged)
    assert problems_of(logged) == []  # the forged chain links up
    assert problems_of(logged, signed) == [
        "checkpoint 1: access log: row 3, which it covered, was altered or moved (and every "
        "row after it then differs)"
    ]


def test_a_checkpoint_names_a_deleted_row_after_a_rehash(logged: str) -> None:
    signed = take_anchor(logged)
    delete(logged, 4)
    for seq in (5, 6):  # no gap left
        raw(logged, f"UPDATE {ACCESS_TABLE} SET seq = ? WHERE seq = ?", (seq - 1, seq))
    rehash(logged)
    assert problems_of(logged) == []
    found = problems_of(logged, signed)
    assert found[0] == "checkpoint 1: access log: row 6, which it covered, was deleted"
    assert "row 4, which it covered, was altered or moved" in found[1]


def test_a_checkpoint_names_moved_rows_after_a_rehash(logged: str) -> None:
    signed = take_anchor(logged)
    move(logged, 5, 6)
    rehash(logged)
    assert problems_of(logged) == []
    assert problems_of(logged, signed) == [
        "checkpoint 1: access log: row 5, which it covered, was altered or moved (and every "
        "row after it then differs)"
    ]


def test_a_deleted_last_row_is_caught_only_by_a_checkpoint(logged: str) -> None:
    signed = take_anchor(logged)
    delete(logged, 6)
    assert problems_of(logged) == []
    assert problems_of(logged, signed) == [
        "checkpoint 1: access log: row 6, which it covered, was deleted"
    ]


def test_rows_after_a_checkpoint_are_outside_it_and_the_next_one_covers_only_them(
    logged: str,
) -> None:
    first = take_anchor(logged)
    with opened(logged) as crm:
        crm.store.access_log.record("user:li", [C1, C2], "show", ["name"])
    second = take_anchor(logged)
    assert (second.checkpoint.access_since, second.checkpoint.access_rows) == (6, 8)
    assert problems_of(logged, first, second) == []
    edit(logged, 7)
    rehash(logged)
    assert problems_of(logged, first, second) == [
        "checkpoint 2: access log: row 7, which it covered, was altered or moved (and every "
        "row after it then differs)"
    ]


def test_an_edit_inside_an_earlier_checkpoint_is_named_by_that_one(logged: str) -> None:
    first = take_anchor(logged)
    with opened(logged) as crm:
        crm.store.access_log.record("user:li", [C1], "show", ["name"])
    second = take_anchor(logged)
    edit(logged, 2)
    rehash(logged)
    found = problems_of(logged, first, second)
    assert found[0].startswith("checkpoint 1: access log: row 2, which it covered, was altered")
    assert found[1] == ("checkpoint 2: access log: rows up to 6, which an earlier checkpoint "
                        "covered, changed (see that checkpoint)")  # fmt: skip


def test_altered_kept_hashes_cannot_hide_a_change(logged: str) -> None:
    signed = take_anchor(logged)
    edit(logged, 3)
    rehash(logged)
    raw(logged, "UPDATE crm_checkpoint_access SET hashes = ?", ("AAAA",))
    assert problems_of(logged, signed) == [
        "checkpoint 1: access log: rows it covered (up to 6) changed, and the hashes the store "
        "kept of them were altered too"
    ]


def test_a_format_1_checkpoint_still_verifies_and_covers_no_access_row(logged: str) -> None:
    taken = take_anchor(logged).checkpoint
    old = msgspec.structs.replace(taken, format=1, access_rows=0, access_head="",
                                  access_since=0, access_kept="")  # fmt: skip
    assert b"access" not in message(old)  # the message a format 1 signer signed
    signed = Anchor(old, base64.b64encode(SIGNER.sign(message(old))).decode(), "")
    edit(logged, 3)
    rehash(logged)
    assert problems_of(logged, signed) == []


def test_a_checkpoint_covering_fewer_rows_than_the_one_before_is_named(logged: str) -> None:
    first = take_anchor(logged)
    delete(logged, 6)
    second = take_anchor(logged)
    found = problems_of(logged, first, second)
    assert any("covers less than the checkpoint before it" in p for p in found)


# --- two writers ----------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from uuid import uuid4
from crm_es.store.access_log import AccessLog
from crm_es.store.database import Database
from crm_es.store.url import parse_store_url
url, name, go = sys.argv[1:4]
log = AccessLog(Database(parse_store_url(url)))
while not Path(go).exists():
    time.sleep(0.005)
for i in range(60):
    log.record(name, [uuid4()], "show", ["name"], f"read {i}")
    time.sleep(0.003)  # room for the other writer (SQLite's busy wait backs off)
"""


def test_two_processes_recording_at_once_keep_one_chain(store_url: str, tmp_path: Path) -> None:
    with CRM(store_url):
        pass  # creates the store (and its master key)
    go = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_url, f"user:{n}", str(go)])
        for n in ("a", "b")
    ]
    time.sleep(0.3)
    go.touch()
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    rows = stored(store_url)
    assert [e.seq for e, _ in rows] == list(range(1, 121))
    assert {e.principal for e, _ in rows} == {"user:a", "user:b"}
    assert len({e.principal for e, _ in rows[:60]}) == 2  # they did interleave
    assert problems_of(store_url) == []


# --- a data subject's access request --------------------------------------------------------


def test_a_subject_request_holds_the_personal_data_and_every_read(logged: str) -> None:
    with opened(logged) as crm:
        crm.log_contact(customer="C-1", channel="phone", direction="inbound",
                        summary="王芳 asked about her order")  # fmt: skip
        engine = ProjectionEngine(crm, read_models())
        try:
            engine.catch_up_all()
        finally:
            engine.close()
    with CRM(logged, principal=DPO) as dpo:
        answer = subject_access(dpo, "C-1", purpose="DSAR 12", at=T0 + timedelta(hours=1))
    held = answer["personal_data"]
    assert held["profile"] == {"name": "王芳", "email": "wang@example.cn", "phone": None,
                               "birthday": "1990-06-05"}  # fmt: skip
    assert {"version": 1, "event": "CustomerRegistered"}.items() <= held["history"][0].items()
    assert held["history"][-1]["fields"] == {"summary": "王芳 asked about her order"}
    copied = [row for rows in held["read_models"].values() for row in rows]
    assert any(row.get("month_day") == "06-05" for row in copied)
    reads = answer["reads"]
    assert [(r["seq"], r["principal"], r["action"]) for r in reads] == [
        (1, "user:li", "show"), (2, "user:li", "export"), (5, "user:wu", "show"),
        (7, "user:dpo", "subject")]  # fmt: skip
    assert reads[-1]["purpose"] == "DSAR 12"
    assert reads[-1]["fields"] == ["birthday", "email", "name", "phone", "summary"]
    assert "李雷" not in msgspec.json.encode(answer).decode()  # nobody else's data


def test_a_subject_request_after_an_erasure_lists_the_reads_and_no_value(logged: str) -> None:
    with opened(logged) as crm:
        crm.erase_personal_data(customer="C-1", requested_by="customer", reason="asked")
        answer = subject_access(crm, "C-1")
    assert answer["erased"] is True
    assert set(answer["personal_data"]["profile"].values()) <= {ERASED, None}
    assert "王芳" not in msgspec.json.encode(answer).decode()
    assert len(answer["reads"]) == 4 and answer["reads"][-1]["principal"] == "api:python"


def test_only_a_principal_allowed_subject_requests_may_answer_one(logged: str) -> None:
    owner = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with opened(logged) as crm:
        crm.assign_owner(customer="C-1", owner="staff:li")
    for principal in (owner, Principal(name="user:au", roles=frozenset({Role.AUDITOR}), pii=True)):
        with CRM(logged, principal=principal) as crm, pytest.raises(PermissionDenied):
            subject_access(crm, "C-1")
    with opened(logged) as crm:
        assert [e.action for e in crm.store.access_log.entries()].count("subject") == 0
        with pytest.raises(CustomerNotFound):
            subject_access(crm, "C-404")


def test_the_chain_is_sha256_over_the_previous_hash_and_the_canonical_row(logged: str) -> None:
    (first, h1), (second, h2) = stored(logged)[:2]
    assert h1 == hashlib.sha256(GENESIS + first.canonical()).hexdigest()
    assert h2 == hashlib.sha256(bytes.fromhex(h1) + second.canonical()).hexdigest()
