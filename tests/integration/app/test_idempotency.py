"""A command re-sent with the same command_id is done once: same result, nothing appended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_es import CRM, CommandResult
from crm_es.cli import main
from crm_es.domain import commands as cmd
from crm_es.domain.errors import IdempotencyConflict


def head(crm: CRM) -> int:
    return crm.recorder.max_notification_id() or 0


def test_a_resent_command_returns_the_original_result_and_appends_nothing(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1")
        first = crm.grant_points(customer="C-1", points=10, command_id="grant-1")
        before = head(crm)
        again = crm.grant_points(customer="C-1", points=10, command_id="grant-1")
        assert (again.customer_id, again.version, again.events) == (
            first.customer_id,
            first.version,
            first.events,
        )
        assert again.duplicate and not first.duplicate
        assert head(crm) == before
    with CRM(store_url) as restarted:  # after a restart: nothing cached, the record is stored
        third = restarted.grant_points(customer="C-1", points=10, command_id="grant-1")
        assert third.duplicate and third.version == first.version
        assert restarted.get_customer("C-1").points_balance == 10


def test_the_same_command_id_with_another_payload_is_a_clear_error(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    crm.grant_points(customer="C-1", points=10, command_id="grant-1")
    before = head(crm)
    with pytest.raises(IdempotencyConflict, match="'grant-1' was already used for a different"):
        crm.grant_points(customer="C-1", points=99, command_id="grant-1")
    assert head(crm) == before


def test_concurrent_resends_apply_the_command_exactly_once(store_url: str) -> None:
    with CRM(store_url) as setup:
        setup.register_customer(external_ref="C-1")
    apps = [CRM(store_url) for _ in range(4)]  # separate caches, like separate processes
    results: list[CommandResult] = []

    def send(app: CRM) -> None:
        for i in range(10):
            results.append(app.grant_points(customer="C-1", points=1, command_id=f"g-{i}"))

    threads = [threading.Thread(target=send, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(results) == 40
        assert apps[0].get_customer("C-1").points_balance == 10
        assert sum(1 for r in results if not r.duplicate) == 10
    finally:
        for a in apps:
            a.close()


def test_execute_many_skips_commands_already_done_also_within_one_chunk(crm: CRM) -> None:
    commands = [
        cmd.RegisterCustomer(external_ref="C-1", command_id="reg"),
        cmd.GrantPoints(customer="C-1", points=5, command_id="g"),
        cmd.GrantPoints(customer="C-1", points=5, command_id="g"),
    ]
    outcomes = list(crm.execute_many(commands))
    assert [getattr(o, "duplicate", None) for o in outcomes] == [False, False, True]
    again = list(crm.execute_many(commands))
    assert all(getattr(o, "duplicate", False) for o in again)
    assert crm.get_customer("C-1").points_balance == 5


def test_re_running_an_exec_file_appends_nothing_even_from_another_process(
    store_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "commands.jsonl"
    script.write_text(
        "\n".join(
            [
                '{"type":"register_customer","external_ref":"C-1"}',
                '{"type":"grant_points","customer":"C-1","points":10}',
                '{"type":"grant_points","customer":"C-1","points":10}',  # identical line: a second grant
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    first = CliRunner().invoke(main, ["--db", store_url, "exec", str(script)])
    assert first.exit_code == 0
    assert [json.loads(x)["version"] for x in first.stdout.splitlines()] == [1, 2, 3]
    rerun = subprocess.run(
        [sys.executable, "-m", "crm_es.cli", "--db", store_url, "exec", str(script)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    results = [json.loads(x) for x in rerun.stdout.splitlines()]
    assert [r["duplicate"] for r in results] == [True, True, True]
    with CRM(store_url) as crm:
        assert crm.get_customer("C-1").points_balance == 20 and head(crm) == 3


def test_a_command_that_changed_nothing_keeps_its_record(store_url: str) -> None:
    """Re-sent after a later change, it is answered as done instead of undoing that change."""
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", tags=["vip"])
        noop = crm.change_tags(customer="C-1", add=["vip"], command_id="tags-1")
        assert noop.events == 0 and not noop.duplicate
        crm.change_tags(customer="C-1", remove=["vip"], command_id="tags-2")
        again = crm.change_tags(customer="C-1", add=["vip"], command_id="tags-1")
        assert again.duplicate and again.version == noop.version
        assert crm.get_customer("C-1").tags == []


def test_a_command_that_changed_nothing_keeps_its_record_on_the_bulk_path(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", tags=["vip"])
        add = cmd.ChangeTags(customer="C-1", add=["vip"], command_id="tags-1")
        [outcome] = crm.execute_many([add])
        assert isinstance(outcome, CommandResult) and outcome.events == 0
        crm.change_tags(customer="C-1", remove=["vip"], command_id="tags-2")
        [again] = crm.execute_many([add])
        assert isinstance(again, CommandResult) and again.duplicate
        assert crm.get_customer("C-1").tags == []


def test_idempotency_hashes_are_keyed_so_a_payload_cannot_be_guessed(store_url: str) -> None:
    """A record of a command holding a phone number does not hold the plain hash of it."""
    import hashlib

    import msgspec

    register = cmd.RegisterCustomer(external_ref="C-1", phone="+86 139 1234 5678", command_id="r1")
    with CRM(store_url) as crm:
        crm.execute(register)
        [record] = crm.store.command_log.select_commands(["r1"]).values()
    plain = hashlib.sha256(msgspec.msgpack.encode(register)).digest()
    assert len(record.payload_hash) == 33 and record.payload_hash[0] == 1
    assert plain not in record.payload_hash


def test_opportunity_and_topic_commands_resent_are_answered_from_the_log_on_every_path(
    store_url: str,
) -> None:
    """Re-sent by command id through the API, execute_many and exec, also after the pipeline
    and the survey topics changed so that the stage and topic would now be refused: each is
    answered with its first result and nothing is stored twice."""
    from crm_es.domain.pipeline import Pipeline, Stage
    from crm_es.store.pipeline_setting import set_pipeline
    from crm_es.store.survey_topics import set_survey_topics

    sent = [
        {"type": "open_opportunity", "opportunity_id": "OP-1", "title": "t", "amount": "10",
         "currency": "CNY", "stage": "qualified", "command_id": "o1"},
        {"type": "advance_opportunity", "opportunity_id": "OP-1", "stage": "proposal",
         "command_id": "o2"},
        {"type": "lose_opportunity", "opportunity_id": "OP-1", "lost_reason": "price",
         "command_id": "o3"},
        {"type": "open_opportunity", "opportunity_id": "OP-2", "title": "t", "amount": "10",
         "currency": "CNY", "command_id": "o4"},
        {"type": "win_opportunity", "opportunity_id": "OP-2", "command_id": "o5"},
        {"type": "answer_survey", "survey_id": "S-1", "metric": "csat", "score": 3,
         "topic": "price", "command_id": "s1"},
    ]  # fmt: skip
    lines = [json.dumps({**c, "customer": "C-1"}) for c in sent]
    commands = [cmd.decode_command(line) for line in lines]
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", category="potential")
        first = [crm.execute(c) for c in commands]
        assert [r.events for r in first] == [2, 1, 1, 1, 2, 1]  # intended, then signed
        stored = head(crm)
        set_pipeline(crm, Pipeline(stages=[Stage("other", "Other", 10)]))
        set_survey_topics(crm, ["other"])
        for outcomes in ([crm.execute(c) for c in commands], list(crm.execute_many(commands))):
            assert [(o.version, o.events, o.duplicate) for o in outcomes] == [
                (r.version, r.events, True) for r in first
            ]
        assert head(crm) == stored
    result = CliRunner().invoke(main, ["--db", store_url, "exec", "-"], input="\n".join(lines))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["version"] for line in result.stdout.splitlines()] == [
        r.version for r in first
    ]
    with CRM(store_url) as crm:
        assert head(crm) == stored
