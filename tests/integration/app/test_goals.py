"""Goals of the customer-management plan on every write path, on SQLite and PostgreSQL: the
Python API, ``crm-es exec``, ``execute_many``, the policy, idempotency, ``audit verify`` (a
tampered plan event is named), audit export and import, and ``crm-es report goals``.

A refused command stores nothing: the store's head does not move."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.audit.chains import heads_digest
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.errors import (
    CrmError,
    DuplicateId,
    IdempotencyConflict,
    ImportRefused,
    InvalidValue,
    PermissionDenied,
)
from crm_es.domain.events import GoalRevised, event_type_name
from crm_es.domain.plan import PLAN_ID
from crm_es.domain.principals import Principal, Role
from crm_es.reports import Reports
from crm_es.store.codec import stored_hash
from tests.helpers.cli import lines, run
from tests.helpers.raw_store import raw, table

GOAL = {"goal_id": "G-1", "metric": "csat", "target": "85", "starts_on": "2026-01-01",
        "ends_on": "2026-06-30", "owner": "user:zhou"}  # fmt: skip
MANAGER = Principal(name="user:zhou", roles=frozenset({Role.MANAGER}), owner="staff:zhou")
STAFF = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")


def plan_types(crm: CRM) -> list[str]:
    return [event_type_name(e) for e in crm.plan_history()]


def test_a_manager_sets_revises_and_closes_a_goal_once_per_command_id(store_url: str) -> None:
    with CRM(store_url, principal=MANAGER) as crm:
        first = crm.set_goal(**GOAL, command_id="g-1")
        assert (first.customer_id, first.version, first.events, first.duplicate) == (
            PLAN_ID, 1, 1, False,
        )  # fmt: skip
        again = crm.set_goal(**GOAL, command_id="g-1")
        assert (again.version, again.events, again.duplicate) == (1, 1, True)
        with pytest.raises(IdempotencyConflict):
            crm.set_goal(**(GOAL | {"target": "90"}), command_id="g-1")
        crm.revise_goal(goal_id="G-1", target="88", command_id="g-2")
        nothing = crm.revise_goal(goal_id="G-1", target="88.0", command_id="g-3")
        assert (nothing.version, nothing.events) == (2, 0)  # no change, but its record is kept
        crm.set_goal(**(GOAL | {"goal_id": "G-2"}))
        assert crm.revise_goal(goal_id="G-1", target="88.0", command_id="g-3").duplicate
        crm.close_goal(goal_id="G-1")
        assert plan_types(crm) == ["GoalSet", "GoalRevised", "GoalSet", "GoalClosed"]
        assert {e.actor for e in crm.plan_history()} == {"user:zhou"}
        plan = crm.plan()
        assert (plan.version, plan.goals["G-1"].target, plan.goals["G-1"].is_open) == (
            4, "88", False,
        )  # fmt: skip
    with CRM(store_url) as admin:
        report = verify(admin)
        assert report.ok and (report.streams, report.events) == (1, 4), report.problems


def test_staff_may_not_set_goals_and_nothing_is_stored(store_url: str) -> None:
    with CRM(store_url) as admin:
        admin.set_goal(**GOAL)
        head = admin.store.head()
    with CRM(store_url, principal=STAFF) as crm:
        for attempt in (
            lambda: crm.set_goal(**(GOAL | {"goal_id": "G-2"})),
            lambda: crm.close_goal(goal_id="G-1"),
            lambda: crm.set_goal(**(GOAL | {"goal_id": "G-3"}), actor="user:zhou"),
        ):
            with pytest.raises(PermissionDenied, match="user:li"):
                attempt()
        (outcome,) = crm.execute_many([cmd.CloseGoal(goal_id="G-1")])
        assert isinstance(outcome, PermissionDenied)
        assert crm.store.head() == head


def test_a_refused_goal_names_the_rule_and_stores_nothing(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.set_goal(**GOAL)
        head = crm.store.head()
        for error, fields, words in [
            (DuplicateId, GOAL, "already exists"),
            (InvalidValue, GOAL | {"goal_id": "G-2", "target": "120"}, "between 0 and 100"),
            (InvalidValue, GOAL | {"goal_id": "G-2", "ends_on": "2025-12-31"}, "end after"),
        ]:
            with pytest.raises(error, match=words):
                crm.set_goal(**fields)
        with pytest.raises(msgspec.ValidationError, match=r"\$\.metric"):
            crm.set_goal(**(GOAL | {"goal_id": "G-2", "metric": "mood"}))
        assert crm.store.head() == head


def test_exec_takes_goal_commands_and_reports_each_line(store_url: str) -> None:
    steps: list[dict[str, Any]] = [
        {"type": "set_goal", **GOAL, "command_id": "s-1"},
        {"type": "set_goal", **(GOAL | {"goal_id": "G-2", "metric": "revenue"})},
        {"type": "revise_goal", "goal_id": "G-1", "ends_on": "2026-09-30"},
        {"type": "close_goal", "goal_id": "G-9"},
        {"type": "close_goal", "goal_id": "G-1", "command_id": "c-1"},
        {"type": "close_goal", "goal_id": "G-1", "command_id": "c-1"},
        {"type": "set_goal", **GOAL, "command_id": "s-1"},
    ]
    code, out, err = run(store_url, "exec", "-", input="\n".join(json.dumps(s) for s in steps))
    results = lines(out)
    assert code == 1 and "line 2" in err
    assert [r["ok"] for r in results] == [True, False, True, False, True, True, True]
    assert "names the currency" in str(results[1]["error"])
    assert "unknown goal 'G-9'" in str(results[3]["error"])
    assert results[4]["version"] == results[5]["version"] == 3
    assert results[6]["duplicate"] is True and results[6]["version"] == 1
    with CRM(store_url) as crm:
        assert plan_types(crm) == ["GoalSet", "GoalRevised", "GoalClosed"]


def test_execute_many_runs_goals_among_customer_commands_in_order(store_url: str) -> None:
    period = {"starts_on": "2026-01-01", "ends_on": "2026-03-31", "owner": "user:zhou"}
    batch = [
        cmd.decode_command(json.dumps(line))
        for line in [
            {"type": "register_customer", "external_ref": "C-1", "command_id": "r-1"},
            {"type": "set_goal", "goal_id": "G-1", "metric": "win_rate", "target": "40",
             "command_id": "b-1", **period},
            {"type": "log_contact", "customer": "C-1", "channel": "phone",
             "direction": "inbound", "command_id": "r-2"},
            {"type": "set_goal", "goal_id": "G-1", "metric": "csat", "target": "40", **period},
            {"type": "close_goal", "goal_id": "G-1", "command_id": "b-2"},
        ]
    ]  # fmt: skip
    with CRM(store_url) as crm:
        outcomes = list(crm.execute_many(batch, chunk_size=2))
        assert [type(o).__name__ for o in outcomes] == [
            "CommandResult", "CommandResult", "CommandResult", "DuplicateId", "CommandResult",
        ]  # fmt: skip
        assert [getattr(o, "customer_id", None) == PLAN_ID for o in outcomes] == [
            False, True, False, False, True,
        ]  # fmt: skip
        again = list(crm.execute_many(batch, chunk_size=2))
        assert [getattr(o, "duplicate", None) for o in again] == [True, True, True, None, True]
        assert isinstance(again[3], CrmError)
        assert plan_types(crm) == ["GoalSet", "GoalClosed"]
        assert [event_type_name(e) for e in crm.history("C-1")] == [
            "CustomerRegistered", "ContactLogged",
        ]  # fmt: skip


def test_a_tampered_plan_event_is_named_by_verify(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.set_goal(**GOAL)
        crm.close_goal(goal_id="G-1")
    oid: Any = PLAN_ID if store_url.startswith("postgres") else PLAN_ID.hex
    where = "WHERE originator_id = ? AND originator_version = 1"
    (row,) = raw(store_url, f"SELECT state FROM {table(store_url)} {where}", (oid,))
    state = bytearray(bytes(row[0]))
    state[40] ^= 0x01
    raw(store_url, f"UPDATE {table(store_url)} SET state = ? {where}", (bytes(state), oid))
    with CRM(store_url) as crm:
        report = verify(crm)
    assert not report.ok
    assert [(p.customer_id, p.version) for p in report.problems][:1] == [(str(PLAN_ID), 1)]


def test_an_audit_export_with_goals_imports_and_reports_the_same(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        source.register_customer(external_ref="C-1", occurred_at="2026-01-02T10:00:00+00:00")
        source.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=5,
                             occurred_at="2026-02-01T10:00:00+00:00")  # fmt: skip
        source.set_goal(**GOAL, command_id="g-1", occurred_at="2026-01-01T10:00:00+00:00")
        source.revise_goal(goal_id="G-1", owner="user:li", occurred_at="2026-01-05T10:00:00+00:00")
        with path.open("wb") as f:
            export_history(source, f.write)
        with Reports(source) as r:
            before = r.goals(as_of="2026-03-31")
        digest = verify(source).digest
    assert [g.value for g in before.goals] == ["100.00"]
    with CRM(f"sqlite:///{tmp_path / 'target.db'}") as target:
        report = import_history(target, path)
        assert report.matches_export and report.digest == digest and verify(target).ok
        with Reports(target) as r:
            after = r.goals(as_of="2026-03-31")
        assert msgspec.structs.replace(after, known_at=before.known_at) == before
        assert target.set_goal(**GOAL, command_id="g-1").duplicate  # done in the source
        assert plan_types(target) == ["GoalSet", "GoalRevised"]


def test_a_forged_plan_event_chained_and_digested_like_a_real_one_is_refused(
    store_url: str, tmp_path: Path
) -> None:
    """A forger who re-chains and re-digests the file still cannot add a step the service
    would have refused: revising a goal after it was closed."""
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        source.set_goal(**GOAL)
        source.close_goal(goal_id="G-1")
        with path.open("wb") as f:
            export_history(source, f.write)
        closed = list(source.plan_history())[-1]
        revised = GoalRevised(
            originator_id=PLAN_ID, originator_version=3, recorded_at=closed.recorded_at,
            occurred_at=closed.occurred_at, actor="user:zhou", goal_id="G-1", target="50",
        )  # fmt: skip
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        last = base64.b64decode(rows[-2]["state"])
        _, _, topic, state = source.store.codec.encode_row(revised, stored_hash(last))
    forged_line = {"kind": "event", "customer_id": str(PLAN_ID), "version": 3, "record": {},
                   "topic": topic, "state": base64.b64encode(state).decode()}  # fmt: skip
    end = rows[-1] | {"events": rows[-1]["events"] + 1,
                      "digest": heads_digest({PLAN_ID: (3, stored_hash(state))})}  # fmt: skip
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join(json.dumps(r) for r in [*rows[:-1], forged_line, end]) + "\n")
    with CRM(f"sqlite:///{tmp_path / 'target.db'}") as target:
        with pytest.raises(ImportRefused, match="after it was closed"):
            import_history(target, forged)
        assert target.store.head() == 0


def test_report_goals_on_the_command_line_in_every_format(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", occurred_at="2026-01-02T10:00:00+00:00")
        crm.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=2,
                          occurred_at="2026-01-20T10:00:00+00:00")  # fmt: skip
        crm.set_goal(**GOAL, occurred_at="2026-01-01T10:00:00+00:00")
    args = ("report", "goals", "--as-of", "2026-01-31")
    code, out, _ = run(store_url, *args, "--format", "json")
    assert code == 0
    (goal,) = json.loads(out)["goals"]
    # 31 of 181 days gone; no answers before the period: the path is the target itself.
    assert (goal["value"], goal["baseline"], goal["elapsed"], goal["path"], goal["on_track"]) == (
        "0.00", None, "17.13", "85.00", False,
    )  # fmt: skip
    code, out, _ = run(store_url, *args, "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (row["goal_id"], row["target"], row["value"]) == ("G-1", "85", "0.00")
    code, out, _ = run(store_url, *args, "--format", "table")
    assert code == 0 and "G-1" in out and "on_track" in out


def test_writers_setting_goals_at_once_store_each_command_once_in_one_chain(
    store_url: str,
) -> None:
    """Four applications (separate locks and caches, like separate processes) send the same
    ten goals, each with its command id, at once: each goal is set once, the plan's versions
    run 1 to 10 without a gap, and the chain verifies."""
    apps = [CRM(store_url) for _ in range(4)]
    results: list[Any] = []

    def send(app: CRM) -> None:
        for i in range(10):
            results.append(app.set_goal(**(GOAL | {"goal_id": f"G-{i}"}), command_id=f"s-{i}"))

    threads = [threading.Thread(target=send, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(results) == 40 and sum(1 for r in results if not r.duplicate) == 10
        assert [e.originator_version for e in apps[0].plan_history()] == list(range(1, 11))
        assert sorted(apps[0].plan().goals) == sorted(f"G-{i}" for i in range(10))
        assert verify(apps[0]).ok
    finally:
        for a in apps:
            a.close()
