"""``crm-es demo``: a small demo run end to end (the full-size run is ``make demo``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_es import CRM
from crm_es.cli import main
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.events import CareTaskScheduled, PersonalDataErased
from crm_es.domain.values import ERASED


def test_demo_builds_a_store_prints_a_summary_and_writes_the_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main,
        [
            "--db",
            url,
            "demo",
            "--customers",
            "60",
            "--years",
            "1",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "0 rejected" in result.stderr
    for heading in (
        "Segments (R×F grid)",
        "Satisfaction by month",
        "Complaints:",
        "Churn:",
        "Care agenda:",
    ):
        assert heading in result.stdout
    # The plan's goals the demo set: the three that run across the end of the demo period.
    goals = re.search(r"Goals \(crm-es report goals\): (.*)", result.stdout)
    assert goals, result.stdout
    assert [g.split()[0] for g in goals.group(1).split("; ")] == [
        "G-CSAT", "G-SLA-EAST", "G-WIN-LI",
    ]  # fmt: skip
    assert out.exists() and out.read_text(encoding="utf-8").lstrip().lower().startswith(
        "<!doctype html"
    )
    with CRM(url) as crm:
        assert (crm.recorder.max_notification_id() or 0) > 1000
        by_rules = care_rule_tasks(crm)
    # The care rules ran once at the end (crm-es maintain): the summary says how many tasks
    # they scheduled, and the store holds exactly those, made by the rules' command ids.
    said = re.search(
        r"Care rules \(crm-es maintain for ([\d-]+)\): (\d+) tasks scheduled", result.stdout
    )
    assert said, result.stdout
    assert "maintain:" not in result.stderr  # the job stored every change it found due
    assert int(said.group(2)) == len(by_rules) > 0
    # Their command ids are the nightly job's own (rule, customer, trigger day): the same
    # history on the same day gives the same tasks, and running the job again adds none.
    again = CliRunner().invoke(main, ["--db", url, "maintain", "--at", said.group(1)])
    assert again.exit_code == 0, again.stderr
    assert sum(json.loads(again.stdout)["care_scheduled"].values()) == 0
    with CRM(url) as crm:
        assert care_rule_tasks(crm) == by_rules


def care_rule_tasks(crm: CRM) -> list[str]:
    """The command ids of the care tasks the care rules scheduled (``care:<rule>:…``)."""
    return sorted(
        str(e.command_id)
        for n in crm.recorder.select_notifications(start=1, limit=1_000_000)
        if n.topic == CareTaskScheduled.TOPIC
        for e in [crm.store.codec.decode_state(n.topic, n.state)]
        if str(e.command_id).startswith("care:")
    )


def test_the_demo_store_verifies_and_its_erased_customers_are_erased(tmp_path: Path) -> None:
    """The demo stores through the bulk path, erasures included: its own verification passes
    and every erased customer's key is gone and personal fields read [erased]."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["--db", url, "demo", "--customers", "300", "--years", "2", "--seed", "5"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r.html")]).exit_code == 0
    verified = CliRunner().invoke(main, ["--db", url, "audit", "verify"])
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    with CRM(url) as crm:
        erased = [
            e.originator_id
            for n in crm.recorder.select_notifications(start=1, limit=1_000_000)
            if n.topic == PersonalDataErased.TOPIC
            for e in [crm.store.codec.decode_state(n.topic, n.state)]
        ]
        assert erased  # the demo erases some customers
        for cid in erased:
            assert crm.store.personal_data.key(cid) is None
            registered = next(iter(crm.history(cid)))
            assert getattr(registered, "name", ERASED) in (ERASED, None)


def test_demo_refuses_a_store_that_already_has_events_unless_reset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    runner.invoke(
        main, ["--db", url, "exec", "-"], input='{"type":"register_customer","external_ref":"MINE"}'
    )
    args = [
        "--db",
        url,
        "demo",
        "--customers",
        "5",
        "--years",
        "0.5",
        "--out",
        str(tmp_path / "r.html"),
    ]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 1 and "already holds events" in refused.stderr
    assert runner.invoke(main, [*args, "--reset"]).exit_code == 0
    with CRM(url) as crm, pytest.raises(CustomerNotFound):
        crm.get_customer("MINE")  # --reset started from an empty store
