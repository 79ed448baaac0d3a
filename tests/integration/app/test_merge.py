"""Merging a customer registered twice, on SQLite and PostgreSQL, on every write path: the Python
API, the bulk path, ``crm-es exec``, audit export and import; the rules that refuse a merge
(storing nothing), two-stream atomicity, idempotency, and erasure after a merge."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import msgspec
import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.history import event_record, summarize
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.errors import (
    CrmError,
    CustomerErased,
    CustomerMergedAway,
    CustomerNotFound,
    IdempotencyConflict,
    InvalidState,
    InvalidValue,
    PermissionDenied,
    UnknownId,
)
from crm_es.domain.events import event_type_name
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.principals import Principal, Role
from crm_es.domain.values import ERASED
from crm_es.store.keys import KEY_TABLE
from tests.helpers.cli import lines, run
from tests.helpers.personal_data import settle_wipe
from tests.helpers.raw_store import db_id, raw, table

A, B = customer_id_for_ref("C-A"), customer_id_for_ref("C-B")  # survivor, duplicate
DAY = "2026-03-01T10:00:00+08:00"


def twice(crm: CRM) -> None:
    """王芳 registered twice: C-A (the survivor) and C-B (the duplicate), each with a purchase;
    C-B with 100 points (expiring 2099-12-31) and an open care task."""
    for ref, order in (("C-A", "O-1"), ("C-B", "O-2")):
        crm.register_customer(external_ref=ref, name="王芳", phone="+86 138 0000 0001",
                              category="signed", occurred_at="2026-01-02T09:00:00+08:00")  # fmt: skip
        crm.record_purchase(customer=ref, order_id=order, amount="100.00", currency="CNY",
                            occurred_at="2026-01-05T10:00:00+08:00")  # fmt: skip
    crm.grant_points(customer="C-B", points=100, expires_on="2099-12-31",
                     occurred_at="2026-01-05T10:00:00+08:00")  # fmt: skip
    crm.schedule_care_task(customer="C-B", task_id="T-1", kind="check_in", due_on="2026-04-01",
                           occurred_at="2026-01-06T10:00:00+08:00")  # fmt: skip


def types(crm: CRM, ref: str) -> list[str]:
    return [event_type_name(e) for e in crm.history(ref)]


def test_a_merge_closes_the_duplicate_and_the_survivor_records_what_it_absorbed(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        twice(crm)
        result = crm.merge_customers(customer="C-B", into="C-A", occurred_at=DAY,
                                     reason="同一客户注册两次", command_id="m-1")  # fmt: skip
        assert (result.customer_id, result.version, result.events) == (B, 6, 2)
        # registered, bought, points, task; then the merge's 2 events on C-B (what the
        # result names: the command's own stream) and 2 on C-A
        assert types(crm, "C-B")[-2:] == ["CareTaskCancelled", "CustomersMerged"]
        assert types(crm, "C-A")[-2:] == ["CustomersMerged", "PointsGranted"]
        closed, survivor = crm.get_customer("C-B"), crm.get_customer("C-A")
        assert closed.merged_into == A and closed.points_balance == 0 and closed.lots == []
        assert closed.care_tasks["T-1"].status == "cancelled"
        assert survivor.absorbed == [B] and survivor.merged_into is None
        assert (crm.view("C-B")["merged_into"], crm.view("C-A")["absorbed"]) == (str(A), [str(B)])
        assert [(lot.remaining, str(lot.expires_on)) for lot in survivor.lots] == [
            (100, "2099-12-31")
        ]
        # Consent, personal data and orders stay each customer's own.
        assert survivor.name == closed.name == "王芳"
        assert sorted(survivor.orders) == ["O-1"] and sorted(closed.orders) == ["O-2"]
        on_b, on_a = list(crm.history("C-B"))[-1], list(crm.history("C-A"))[-2]
        assert summarize(on_b) == f"merged into {A}, closed, 100 points moved"
        assert summarize(on_a) == f"absorbed {B}, 100 points moved"
        assert on_a.occurred_at == on_b.occurred_at and on_a.recorded_at == on_b.recorded_at
        assert event_record(on_b)["reason"] == event_record(on_a)["reason"] == "同一客户注册两次"
        assert (on_b.command_id, on_a.command_id) == ("m-1", None)  # the record names C-B's
        report = verify(crm)
        assert report.ok, report.problems
        assert verify(crm, "C-B").ok and verify(crm, "C-A").ok


def test_every_later_command_on_the_merged_customer_is_refused_naming_the_survivor(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        twice(crm)
        crm.merge_customers(customer="C-B", into="C-A")
        head = crm.recorder.max_notification_id()
        attempts = [
            lambda: crm.log_contact(customer="C-B", channel="phone", direction="inbound"),
            lambda: crm.record_purchase(
                customer="C-B", order_id="O-9", amount="1.00", currency="CNY"
            ),
            lambda: crm.update_profile(customer="C-B", region="华南"),
            lambda: crm.change_consent(customer="C-B", marketing=True),
            lambda: crm.open_opportunity(
                customer="C-B", opportunity_id="OP-1", title="x", amount="1", currency="CNY"
            ),
            lambda: crm.merge_customers(customer="C-B", into="C-A"),
        ]
        for attempt in attempts:
            with pytest.raises(CustomerMergedAway, match=f"merged into customer {A}") as e:
                attempt()
            assert f"send it to {A}" in str(e.value)
        with pytest.raises(CustomerMergedAway, match=f"customer {B} was merged into"):
            crm.merge_customers(customer="C-A", into="C-B")  # into a closed customer
        assert crm.recorder.max_notification_id() == head  # nothing stored
        crm.log_contact(customer="C-A", channel="phone", direction="inbound")  # survivor works


def test_merges_that_cannot_be_are_refused_with_clear_errors_and_store_nothing(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        twice(crm)
        crm.register_customer(external_ref="C-E", name="李雷")
        crm.erase_personal_data(customer="C-E", requested_by="customer")
        settle_wipe(crm)
        crm.open_opportunity(customer="C-A", opportunity_id="OP-1", title="t", amount="1",
                             currency="CNY")  # fmt: skip
        head = crm.recorder.max_notification_id()
        refusals: list[tuple[dict[str, str], type[CrmError], str]] = [
            ({"customer": "C-A", "into": "C-A"}, InvalidValue, "cannot be merged into itself"),
            ({"customer": "C-A", "into": str(A)}, InvalidValue, "cannot be merged into itself"),
            ({"customer": "C-X", "into": "C-A"}, CustomerNotFound, "C-X"),
            ({"customer": "C-B", "into": "C-Y"}, CustomerNotFound, "C-Y"),
            ({"customer": "C-E", "into": "C-A"}, CustomerErased, "merge it into another"),
            ({"customer": "C-B", "into": "C-E"}, CustomerErased, "merge another into it"),
            ({"customer": "C-A", "into": "C-B"}, InvalidState, "open sales opportunities OP-1"),
            ({"customer": "C-B", "into": "C-A", "occurred_at": "2026-01-01T00:00:00+08:00"},
             InvalidValue, "a merge cannot be dated before either customer's latest event"),
        ]  # fmt: skip
        for fields, error, words in refusals:
            with pytest.raises(error, match=words):
                crm.merge_customers(**fields)
        assert crm.recorder.max_notification_id() == head
        with pytest.raises(msgspec.ValidationError, match="missing required field `into`"):
            crm.merge_customers(customer="C-B")


def test_a_merge_dated_before_either_sides_latest_event_is_refused(store_url: str) -> None:
    """A back-dated merge would move no points granted after it (both balances left at 0) and
    let a customer closed later absorb another: refused, storing nothing."""
    with CRM(store_url) as crm:
        twice(crm)  # C-B's latest fact: its care task, 2026-01-06 10:00
        crm.grant_points(customer="C-B", points=50, expires_on="2099-12-31",
                         occurred_at="2026-03-01T10:00:00+08:00")  # fmt: skip
        crm.log_contact(customer="C-A", channel="phone", direction="inbound",
                        occurred_at="2026-04-01T10:00:00+08:00")  # fmt: skip
        head = crm.recorder.max_notification_id()
        for when, latest in (("2026-02-01T10:00:00+08:00", "2026-03-01T02:00:00+00:00"),
                             ("2026-03-15T10:00:00+08:00", "2026-04-01T02:00:00+00:00")):  # fmt: skip
            with pytest.raises(InvalidValue, match=re.escape(f"later fact at {latest}")):
                crm.merge_customers(customer="C-B", into="C-A", occurred_at=when)
        assert crm.recorder.max_notification_id() == head
        assert crm.get_customer("C-B").points_balance == 150
        crm.merge_customers(customer="C-B", into="C-A", occurred_at="2026-04-01T10:00:00+08:00")
        assert crm.get_customer("C-A").points_balance == 150
        # the survivor's later absorb of a third is judged on its own latest event (the merge)
        crm.register_customer(external_ref="C-C", occurred_at="2026-01-02T09:00:00+08:00")
        with pytest.raises(InvalidValue, match="later fact at 2026-04-01T02:00:00"):
            crm.merge_customers(customer="C-A", into="C-C", occurred_at="2026-03-20T10:00:00+08:00")


def test_open_complaints_refuse_a_merge_and_the_duplicates_orders_stay_refundable(
    store_url: str,
) -> None:
    """A complaint on a closed customer could never be resolved (past its SLA for good): the
    merge waits for it. A refund of the duplicate's order is still taken on its stream."""
    with CRM(store_url) as crm:
        twice(crm)
        crm.file_complaint(customer="C-B", complaint_id="K-1", category="delivery",
                           severity="high", occurred_at="2026-01-07T10:00:00+08:00")  # fmt: skip
        head = crm.recorder.max_notification_id()
        with pytest.raises(InvalidState, match="open complaints K-1: resolve them before merging"):
            crm.merge_customers(customer="C-B", into="C-A", occurred_at=DAY)
        assert crm.recorder.max_notification_id() == head
        crm.resolve_complaint(customer="C-B", complaint_id="K-1", resolution="refunded",
                              occurred_at="2026-01-08T10:00:00+08:00")  # fmt: skip
        crm.merge_customers(customer="C-B", into="C-A", occurred_at=DAY)
        done = crm.refund_purchase(customer="C-B", order_id="O-2", amount="30.00",
                                   occurred_at="2026-03-02T10:00:00+08:00")  # fmt: skip
        assert (done.customer_id, done.events) == (B, 1)  # no tier review on a closed record
        assert types(crm, "C-B")[-1] == "PurchaseRefunded"
        assert crm.get_customer("C-B").orders["O-2"].refunded == 3000
        assert crm.get_customer("C-B").merged_into == A
        with pytest.raises(UnknownId, match="O-2"):
            crm.refund_purchase(customer="C-A", order_id="O-2", amount="1.00")
        with pytest.raises(CustomerMergedAway, match="resolve_complaint"):
            crm.resolve_complaint(customer="C-B", complaint_id="K-1", resolution="x")


def test_a_merge_is_idempotent_by_command_id(store_url: str) -> None:
    with CRM(store_url) as crm:
        twice(crm)
        first = crm.merge_customers(customer="C-B", into="C-A", command_id="m-1")
        head = crm.recorder.max_notification_id()
        again = crm.merge_customers(customer="C-B", into="C-A", command_id="m-1")
        assert again == msgspec.structs.replace(first, duplicate=True)
        with pytest.raises(IdempotencyConflict, match="m-1"):
            crm.merge_customers(customer="C-B", into="C-A", command_id="m-1", reason="x")
        assert crm.recorder.max_notification_id() == head
    with CRM(store_url) as crm:  # another process: answered from the stored record
        assert crm.merge_customers(customer="C-B", into="C-A", command_id="m-1").duplicate


def test_a_merge_reusing_another_commands_id_is_an_idempotency_conflict(store_url: str) -> None:
    """Not a ConcurrencyConflict after a second of retries: the log is looked up on the retry."""
    with CRM(store_url) as crm:
        twice(crm)
        crm.log_contact(customer="C-A", channel="phone", direction="inbound", command_id="x-1")
        head = crm.recorder.max_notification_id()
        started = time.monotonic()
        with pytest.raises(IdempotencyConflict, match="x-1"):
            crm.merge_customers(customer="C-B", into="C-A", command_id="x-1")
        assert time.monotonic() - started < 0.5  # one retry, not ten with back-off
        assert crm.recorder.max_notification_id() == head
        assert crm.get_customer("C-B").merged_into is None


def test_both_streams_are_saved_in_one_transaction_or_neither(store_url: str) -> None:
    """The store refuses the survivor's event (a trigger stands in for a crash after the
    duplicate's rows were written in the same transaction): neither side is left."""
    with CRM(store_url) as crm:
        twice(crm)
    events, survivor = table(store_url), db_id(store_url, "C-A")
    if store_url.startswith("postgres"):
        raw(store_url, "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'crash'; END $$")  # fmt: skip
        raw(store_url, f"CREATE TRIGGER crash BEFORE INSERT ON {events} FOR EACH ROW WHEN "
            f"(NEW.originator_id = '{survivor}' AND NEW.topic = 'crm.customer.CustomersMerged') "
            "EXECUTE FUNCTION crash()")  # fmt: skip
        drop = "DROP TRIGGER crash ON " + events
    else:
        raw(store_url, f"CREATE TRIGGER crash BEFORE INSERT ON {events} WHEN "
            f"NEW.originator_id = '{survivor}' AND NEW.topic = 'crm.customer.CustomersMerged' "
            "BEGIN SELECT RAISE(ABORT, 'crash'); END")  # fmt: skip
        drop = "DROP TRIGGER crash"
    with CRM(store_url) as crm:
        head = crm.recorder.max_notification_id()
        with pytest.raises(Exception):  # noqa: B017 (the store's error, retried, then given up)
            crm.merge_customers(customer="C-B", into="C-A", command_id="m-1")
        assert crm.recorder.max_notification_id() == head
        assert "CustomersMerged" not in types(crm, "C-B")
        assert crm.get_customer("C-B").merged_into is None
        raw(store_url, drop)
        crm.merge_customers(customer="C-B", into="C-A", command_id="m-1")  # now it goes
        assert types(crm, "C-B")[-1] == types(crm, "C-A")[-2] == "CustomersMerged"
        assert verify(crm).ok


def test_the_bulk_path_runs_each_merge_in_its_place(store_url: str) -> None:
    steps = [
        {"type": "register_customer", "external_ref": "C-A"},
        {"type": "register_customer", "external_ref": "C-B"},
        {"type": "log_contact", "customer": "C-B", "channel": "phone", "direction": "inbound"},
        {"type": "merge_customers", "customer": "C-B", "into": "C-A", "command_id": "m-1"},
        {"type": "log_contact", "customer": "C-B", "channel": "phone", "direction": "inbound"},
        {"type": "merge_customers", "customer": "C-B", "into": "C-A", "command_id": "m-1"},
        {"type": "merge_customers", "customer": "C-A", "into": "C-A"},
        {"type": "log_contact", "customer": "C-A", "channel": "phone", "direction": "inbound"},
    ]
    commands = [cmd.decode_command(msgspec.json.encode(s)) for s in steps]
    with CRM(store_url) as crm:
        outcomes = list(crm.execute_many(iter(commands), chunk_size=2, validated=True))
        kinds = [type(o).__name__ for o in outcomes]
        assert kinds == [
            "CommandResult",
            "CommandResult",
            "CommandResult",
            "CommandResult",
            "CustomerMergedAway",
            "CommandResult",
            "InvalidValue",
            "CommandResult",
        ]
        assert outcomes[5].duplicate  # type: ignore[union-attr]
        assert types(crm, "C-B") == ["CustomerRegistered", "ContactLogged", "CustomersMerged"]
        assert types(crm, "C-A") == ["CustomerRegistered", "CustomersMerged", "ContactLogged"]
        # Not validated: a merge's schema error comes back in its place too.
        bad = cmd.MergeCustomers(customer="C-A", into="")
        assert isinstance(next(iter(crm.execute_many([bad]))), msgspec.ValidationError)


def test_crm_es_exec_merges_and_refuses_commands_on_the_closed_customer(store_url: str) -> None:
    steps = [
        {"type": "register_customer", "external_ref": "C-A"},
        {"type": "register_customer", "external_ref": "C-B"},
        {"type": "merge_customers", "customer": "C-B", "into": "C-A", "command_id": "m-1"},
        {"type": "merge_customers", "customer": "C-B", "into": "C-A", "command_id": "m-1"},
        {"type": "grant_points", "customer": "C-B", "points": 5},
    ]
    code, out, _ = run(store_url, "exec", "-", input="\n".join(json.dumps(s) for s in steps))
    results = lines(out)
    assert code == 1
    assert [r["ok"] for r in results] == [True, True, True, True, False]
    assert results[3]["version"] == results[2]["version"]  # the re-sent merge: done already
    assert f"merged into customer {A}" in str(results[4]["error"])


def test_a_merge_survives_an_audit_export_and_import(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        twice(source)
        source.merge_customers(customer="C-B", into="C-A", command_id="m-1")
        with path.open("wb") as f:
            export_history(source, f.write)
        digest = verify(source).digest
    with CRM(f"sqlite:///{tmp_path / 'target.db'}") as target:
        report = import_history(target, path)
        assert report.matches_export and report.digest == digest
        assert verify(target).ok
        assert target.get_customer("C-B").merged_into == A
        assert target.get_customer("C-A").absorbed == [B]
        with pytest.raises(CustomerMergedAway):
            target.log_contact(customer="C-B", channel="phone", direction="inbound")
        assert target.merge_customers(customer="C-B", into="C-A", command_id="m-1").duplicate


def test_either_customer_can_still_be_erased_after_the_merge(store_url: str) -> None:
    with CRM(store_url) as crm:
        twice(crm)
        crm.merge_customers(customer="C-B", into="C-A")
        for ref in ("C-B", "C-A"):
            crm.erase_personal_data(customer=ref, requested_by="customer")
            settle_wipe(crm)
            assert crm.view(ref)["profile"]["name"] == ERASED
            assert next(iter(crm.history(ref))).name == ERASED  # type: ignore[attr-defined]
            key = raw(store_url, f"SELECT key_material FROM {KEY_TABLE} WHERE customer_id = ?",
                      (str(customer_id_for_ref(ref)),))  # fmt: skip
            assert key == [] or key[0][0] is None, ref
        assert types(crm, "C-B")[-2:] == ["CustomersMerged", "PersonalDataErased"]
        assert verify(crm).ok
        with pytest.raises(CustomerMergedAway):  # still closed
            crm.log_contact(customer="C-B", channel="phone", direction="inbound")


def test_staff_merge_only_customers_they_work_on(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-A", owner="staff:li")
        crm.register_customer(external_ref="C-B", owner="staff:li")
        crm.register_customer(external_ref="C-W", owner="staff:wang")
    li = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with CRM(store_url, principal=li) as crm:
        head = crm.recorder.max_notification_id()
        for fields in ({"customer": "C-B", "into": "C-W"}, {"customer": "C-W", "into": "C-A"}):
            with pytest.raises(PermissionDenied, match="staff:wang's"):
                crm.merge_customers(**fields)
        assert crm.recorder.max_notification_id() == head
        crm.merge_customers(customer="C-B", into="C-A")
        assert crm.get_customer("C-B").merged_into == A


def test_a_merge_of_the_unowned_pool_is_for_managers_and_admins(store_url: str) -> None:
    """A merge cannot be undone: staff fold only customers they own, on both sides."""
    with CRM(store_url) as crm:
        for ref in ("C-P", "C-Q", "C-R"):
            crm.register_customer(external_ref=ref)
        crm.register_customer(external_ref="C-L", owner="staff:li")
    li = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with CRM(store_url, principal=li) as crm:
        head = crm.recorder.max_notification_id()
        for fields in ({"customer": "C-P", "into": "C-Q"}, {"customer": "C-L", "into": "C-P"},
                       {"customer": "C-P", "into": "C-L"}):  # fmt: skip
            with pytest.raises(PermissionDenied, match="a merge cannot be undone"):
                crm.merge_customers(**fields)
        assert crm.recorder.max_notification_id() == head
        crm.log_contact(customer="C-P", channel="phone", direction="inbound")  # the pool is li's
    zhou = Principal(name="user:zhou", roles=frozenset({Role.MANAGER}), owner="staff:zhou",
                     team=frozenset({"staff:li"}))  # fmt: skip
    with CRM(store_url, principal=zhou) as crm:
        crm.merge_customers(customer="C-P", into="C-L")
    boss = Principal(name="user:boss", roles=frozenset({Role.ADMIN}))
    with CRM(store_url, principal=boss) as crm:
        crm.merge_customers(customer="C-Q", into="C-R")
        assert crm.get_customer("C-Q").merged_into == customer_id_for_ref("C-R")
