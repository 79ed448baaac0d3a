"""Sales opportunities on every write path, on SQLite and PostgreSQL: the Python API, the bulk
path, ``crm-es exec``, the store's pipeline setting, snapshots, and audit export and import.

A refused command stores nothing: the store's head does not move."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import msgspec
import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.errors import (
    CrmError,
    DuplicateId,
    InvalidState,
    InvalidValue,
    PermissionDenied,
    UnknownCurrency,
    UnknownId,
)
from crm_es.domain.events import OpportunityAdvanced, event_type_name
from crm_es.domain.pipeline import DEFAULT_PIPELINE, Pipeline, Stage
from crm_es.domain.principals import Principal, Role
from crm_es.reports import Reports
from crm_es.store.pipeline_setting import pipeline_setting, set_pipeline
from tests.helpers.cli import lines, run

OPEN = {"customer": "C-1", "opportunity_id": "OP-1", "title": "ERP 升级", "amount": "120000.00",
        "currency": "CNY"}  # fmt: skip


def history_types(crm: CRM, ref: str = "C-1") -> list[str]:
    return [event_type_name(e) for e in crm.history(ref)]


def test_an_opportunity_is_opened_moved_and_won_through_the_api(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", owner="staff:li")
        result = crm.open_opportunity(**OPEN, expected_close_on="2099-06-30", source="referral")
        assert result.events == 2  # opened, and the potential customer became intended
        assert (
            crm.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="proposal").events
            == 1
        )
        assert (
            crm.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="proposal").events
            == 0
        )
        (shown,) = crm.view("C-1")["open_opportunities"]  # crm-es show lists the open ones
        assert (shown["opportunity_id"], shown["stage"], shown["amount"], shown["owner"]) == (
            "OP-1", "proposal", "120000.00", "staff:li",
        )  # fmt: skip
        # the order the deal became: its purchase, as a first purchase, makes the customer signed
        crm.record_purchase(customer="C-1", order_id="O-1", amount="99.00", currency="CNY")
        crm.win_opportunity(customer="C-1", opportunity_id="OP-1", order_id="O-1")
        assert crm.view("C-1")["open_opportunities"] == []
    with CRM(store_url) as crm:  # as stored
        assert history_types(crm)[-6:] == [
            "OpportunityOpened", "ProfileUpdated", "OpportunityAdvanced", "PurchaseRecorded",
            "ProfileUpdated", "OpportunityWon",
        ]  # fmt: skip
        customer = crm.get_customer("C-1")
        opportunity = customer.opportunities["OP-1"]
        assert (opportunity.status, opportunity.stage, opportunity.order_id) == (
            "won",
            "proposal",
            "O-1",
        )
        assert (opportunity.amount, opportunity.currency, opportunity.owner) == (
            12_000_000,
            "CNY",
            "staff:li",
        )
        assert customer.category == "signed"


@pytest.mark.parametrize(
    ("method", "fields", "error", "words"),
    [
        ("open_opportunity", OPEN, DuplicateId, "opportunity 'OP-1' already exists"),
        ("open_opportunity", OPEN | {"opportunity_id": "OP-2", "currency": "XYZ"}, UnknownCurrency, "XYZ"),
        ("open_opportunity", OPEN | {"opportunity_id": "OP-2", "amount": "1.234"}, InvalidValue, "at most 2 decimal"),
        ("open_opportunity", OPEN | {"opportunity_id": "OP-2", "stage": "won"}, InvalidValue, "win_opportunity"),
        ("advance_opportunity", {"opportunity_id": "OP-9", "stage": "proposal"}, UnknownId, "unknown opportunity 'OP-9'"),
        ("advance_opportunity", {"opportunity_id": "OP-1", "stage": "closing"}, InvalidValue,
         "one of: lead, qualified, proposal, negotiation"),
        ("advance_opportunity", {"opportunity_id": "OP-L", "stage": "proposal"}, InvalidState, "already lost"),
        ("win_opportunity", {"opportunity_id": "OP-L"}, InvalidState, "already lost"),
        ("win_opportunity", {"opportunity_id": "OP-1", "order_id": "O-9"}, UnknownId, "unknown order 'O-9'"),
        ("lose_opportunity", {"opportunity_id": "OP-1", "lost_reason": "price",
                              "occurred_at": "2020-01-01T00:00:00+00:00"}, InvalidValue, "lost before"),
    ],
)  # fmt: skip
def test_a_refused_opportunity_command_names_the_rule_and_stores_nothing(
    store_url: str, method: str, fields: dict[str, str], error: type[CrmError], words: str
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", occurred_at="2021-01-01T00:00:00+00:00")
        crm.open_opportunity(**OPEN)
        crm.open_opportunity(**(OPEN | {"opportunity_id": "OP-L"}))
        crm.lose_opportunity(customer="C-1", opportunity_id="OP-L", lost_reason="timing")
        head = crm.store.head()
        with pytest.raises(error) as caught:
            getattr(crm, method)(**({"customer": "C-1"} | fields))
        assert words in str(caught.value)
        assert crm.store.head() == head


def test_the_bulk_path_decides_opportunities_like_the_single_path(store_url: str) -> None:
    steps = [
        {"type": "register_customer", "external_ref": "C-1"},
        {"type": "open_opportunity", **OPEN},
        {"type": "advance_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "stage": "nope"},
        {"type": "advance_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "stage": "negotiation"},
        {"type": "lose_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "lost_reason": "price"},
        {"type": "win_opportunity", "customer": "C-1", "opportunity_id": "OP-1"},
        {"type": "open_opportunity", **(OPEN | {"opportunity_id": "OP-2"})},
    ]  # fmt: skip
    commands = [cmd.decode_command(msgspec.json.encode(s)) for s in steps]
    with CRM(store_url) as crm:
        outcomes = list(crm.execute_many(commands, chunk_size=3, validated=True))
        kinds = [type(o).__name__ for o in outcomes]
        assert kinds == ["CommandResult", "CommandResult", "InvalidValue", "CommandResult",
                         "CommandResult", "InvalidState", "CommandResult"]  # fmt: skip
        bulk = crm.get_customer("C-1")
    with CRM("sqlite:///:memory:") as crm:  # the same commands one by one: the same state
        for c in commands:
            with contextlib.suppress(CrmError):
                crm.execute(c)
        single = crm.get_customer("C-1")
    assert single.opportunities == bulk.opportunities or {
        k: (o.status, o.stage) for k, o in single.opportunities.items()
    } == {k: (o.status, o.stage) for k, o in bulk.opportunities.items()}
    assert {k: (o.status, o.stage) for k, o in bulk.opportunities.items()} == {
        "OP-1": ("lost", "negotiation"), "OP-2": ("open", "lead"),
    }  # fmt: skip


def test_exec_takes_opportunity_commands_and_reports_each_line(store_url: str) -> None:
    steps = [
        {"type": "register_customer", "external_ref": "C-1", "owner": "staff:li"},
        {"type": "open_opportunity", **OPEN, "expected_close_on": "2099-01-31"},
        {"type": "advance_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "stage": "won"},
        {"type": "open_opportunity", **(OPEN | {"opportunity_id": "OP-2", "amount": 5})},
        {"type": "win_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "command_id": "w-1"},
        {"type": "win_opportunity", "customer": "C-1", "opportunity_id": "OP-1", "command_id": "w-1"},
    ]  # fmt: skip
    code, out, err = run(
        store_url, "exec", "-", input="\n".join(json.dumps(s, ensure_ascii=False) for s in steps)
    )
    results = lines(out)
    assert code == 1
    assert [r["ok"] for r in results] == [True, True, False, False, True, True]
    assert "open stages: lead, qualified, proposal, negotiation" in str(results[2]["error"])
    assert "$.amount" in str(results[3]["error"])
    assert results[4]["version"] == results[5]["version"]  # the re-sent command: done already
    assert "line 3" in err
    with CRM(store_url) as crm:
        assert history_types(crm).count("OpportunityWon") == 1


def test_the_stores_pipeline_decides_stages_for_every_process(store_url: str) -> None:
    custom = Pipeline(stages=[Stage("visit", "拜访", 5), Stage("contract", "合同", 90)])
    with CRM(store_url) as first, CRM(store_url) as second:
        first.register_customer(external_ref="C-1")
        second.open_opportunity(**OPEN)  # second has read the default pipeline
        assert pipeline_setting(first.store.settings).replace(custom) == custom
        # The other process knew the old pipeline: a stage it does not know is looked up again.
        second.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="contract")
        with pytest.raises(InvalidValue, match="one of: visit, contract"):
            first.open_opportunity(**(OPEN | {"opportunity_id": "OP-2", "stage": "lead"}))
        first.open_opportunity(**(OPEN | {"opportunity_id": "OP-3"}))  # at the first stage
        assert first.get_customer("C-1").opportunities["OP-3"].stage == "visit"
        events = [e for e in first.history("C-1") if isinstance(e, OpportunityAdvanced)]
        assert [(e.stage, e.probability) for e in events] == [("contract", 90)]
        # The opportunity at a stage the pipeline no longer lists keeps it, and still moves on.
        assert pipeline_setting(first.store.settings).reset() == DEFAULT_PIPELINE
        first.advance_opportunity(customer="C-1", opportunity_id="OP-3", stage="proposal")


def test_a_snapshot_of_a_customer_with_opportunities_equals_the_replay(store_url: str) -> None:
    with CRM(store_url, snapshot_interval=5) as crm:
        crm.register_customer(external_ref="C-1")
        for n in range(4):
            crm.open_opportunity(**(OPEN | {"opportunity_id": f"OP-{n}"}))
            crm.advance_opportunity(customer="C-1", opportunity_id=f"OP-{n}", stage="proposal")
        crm.lose_opportunity(customer="C-1", opportunity_id="OP-0", lost_reason="price")
        report = verify(crm)
        assert report.ok and report.snapshots >= 2, report.problems
    with CRM(store_url, snapshot_interval=5) as crm:  # loaded from its snapshot
        opportunities = crm.get_customer("C-1").opportunities
        assert sorted((k, o.status, o.stage) for k, o in opportunities.items()) == [
            ("OP-0", "lost", "proposal"), ("OP-1", "open", "proposal"), ("OP-2", "open", "proposal"),
            ("OP-3", "open", "proposal"),
        ]  # fmt: skip


def test_an_audit_export_with_opportunities_imports_and_reports_the_same(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        source.register_customer(external_ref="C-1", owner="staff:li")
        source.open_opportunity(**OPEN, occurred_at="2026-01-05T10:00:00+00:00")
        source.advance_opportunity(customer="C-1", opportunity_id="OP-1", stage="negotiation",
                                   occurred_at="2026-02-05T10:00:00+00:00")  # fmt: skip
        source.open_opportunity(
            **(OPEN | {"opportunity_id": "OP-2"}), occurred_at="2026-01-06T10:00:00+00:00"
        )
        source.lose_opportunity(customer="C-1", opportunity_id="OP-2", lost_reason="competitor",
                                note="客户选了别家", occurred_at="2026-03-01T10:00:00+00:00")  # fmt: skip
        with path.open("wb") as f:
            export_history(source, f.write)
        with Reports(source) as r:
            before = r.pipeline(as_of="2026-06-30")
        digest = verify(source).digest
    with CRM(f"sqlite:///{tmp_path / 'target.db'}") as target:
        report = import_history(target, path)
        assert report.matches_export and report.digest == digest
        assert verify(target).ok
        with Reports(target) as r:
            after = r.pipeline(as_of="2026-06-30")
        assert msgspec.structs.replace(after, known_at=before.known_at) == before  # known later
        assert after.overall.weighted_amount == {"CNY": "90000.00"}  # 120000.00 at 75 %
        assert [(x.lost_reason, x.lost) for x in after.lost_reasons] == [("competitor", 1)]
        history = [e for e in target.history("C-1") if event_type_name(e) == "OpportunityLost"]
        assert history[0].note == "客户选了别家"  # type: ignore[attr-defined]


def test_only_an_admin_changes_the_pipeline_and_a_bad_one_changes_nothing(store_url: str) -> None:
    custom = Pipeline(stages=[Stage("visit", "拜访", 5), Stage("contract", "合同", 90)])
    staff = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with CRM(store_url, principal=staff) as crm, pytest.raises(PermissionDenied):
        set_pipeline(crm, custom)
    with CRM(store_url) as crm:
        assert pipeline_setting(crm.store.settings).current() == DEFAULT_PIPELINE
        assert set_pipeline(crm, msgspec.json.encode(custom)) == custom
        for bad, words in [
            ('{"stages": [{"key": "a", "label": "A", "probability": 120}]}',
             r"<= 100 - at `\$\.stages\[0\]\.probability`"),
            (Pipeline(stages=[Stage("a", "", 5)]), r"length >= 1 - at `\$\.stages\[0\]\.label`"),
        ]:  # fmt: skip
            with pytest.raises(InvalidValue, match=words):
                set_pipeline(crm, bad)
        assert pipeline_setting(crm.store.settings).current() == custom  # unchanged
        assert set_pipeline(crm, None) == DEFAULT_PIPELINE
