"""A survey answer's topic through every way in and out, on SQLite and PostgreSQL: the API,
``execute_many``, ``crm-es exec``, the store's topic setting, and an audit export imported
into another store. An unknown topic is refused naming the allowed ones and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.errors import InvalidValue, PermissionDenied
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.principals import Principal, Role
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS
from crm_es.store.survey_topics import set_survey_topics, survey_topics
from tests.helpers.cli import lines, run
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres

ALLOWED = "allowed: product_quality, delivery, price, service_attitude, after_sale, other"


def topics_of(crm: CRM, ref: str = "C-1") -> dict[str, object]:
    """survey id -> topic (None when the event has none) of the customer's answers."""
    return {
        e.survey_id: e.topic if isinstance(e.topic, str) else None
        for e in crm.history(ref)
        if isinstance(e, ev.SurveyAnswered)
    }


def test_the_api_stores_a_topic_and_refuses_an_unknown_one_storing_nothing(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    crm.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=2, topic="delivery")
    crm.answer_survey(customer="C-1", survey_id="S-2", metric="nps", score=9)
    with pytest.raises(InvalidValue, match=f"{ALLOWED} .*\\(got 'packaging'\\)"):
        crm.answer_survey(customer="C-1", survey_id="S-3", metric="csat", score=2,
                          topic="packaging")  # fmt: skip
    assert topics_of(crm) == {"S-1": "delivery", "S-2": None}
    assert crm.get_customer("C-1").version == 3


def test_the_store_setting_changes_the_topics_at_once_and_keeps_stored_ones(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1")
        crm.answer_survey(customer="C-1", survey_id="S-1", metric="csat", score=4, topic="price")
        assert set_survey_topics(crm, ["packaging", "price_level"]) == ("packaging", "price_level")
        with pytest.raises(InvalidValue, match=r"allowed: packaging, price_level \("):
            crm.answer_survey(customer="C-1", survey_id="S-2", metric="csat", score=4,
                              topic="price")  # fmt: skip
        crm.answer_survey(customer="C-1", survey_id="S-3", metric="csat", score=4,
                          topic="packaging")  # fmt: skip
    with CRM(store_url) as again:  # kept in the store, for every process
        assert survey_topics(again.store.settings).current() == ("packaging", "price_level")
        assert topics_of(again) == {"S-1": "price", "S-3": "packaging"}
        assert set_survey_topics(again, None) == DEFAULT_SURVEY_TOPICS
        again.answer_survey(customer="C-1", survey_id="S-4", metric="csat", score=4,
                            topic="price")  # fmt: skip


def test_only_an_admin_changes_the_topics(crm: CRM) -> None:
    staff = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with (
        CRM(crm.store.config.url, principal=staff) as as_staff,
        pytest.raises(PermissionDenied, match=r"user:li( \(staff\))? may not change settings"),
    ):
        set_survey_topics(as_staff, ["packaging"])
    assert survey_topics(crm.store.settings).current() == DEFAULT_SURVEY_TOPICS


def test_execute_many_stores_topics_and_refuses_an_unknown_one_alone(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    answers = [
        cmd.AnswerSurvey(customer="C-1", survey_id="S-1", metric="ces", score=6,
                         topic="after_sale"),
        cmd.AnswerSurvey(customer="C-1", survey_id="S-2", metric="ces", score=6, topic="售后"),
        cmd.AnswerSurvey(customer="C-1", survey_id="S-3", metric="csat", score=5, topic=None),
    ]  # fmt: skip
    outcomes = list(crm.execute_many(answers))
    assert isinstance(outcomes[1], InvalidValue) and ALLOWED in str(outcomes[1])
    assert [getattr(o, "events", None) for o in outcomes] == [1, None, 1]
    assert topics_of(crm) == {"S-1": "after_sale", "S-3": None}


def test_crm_es_exec_takes_a_topic_and_names_the_allowed_ones_on_a_typo(store_url: str) -> None:
    assert run(store_url, "init")[0] == 0
    commands = "\n".join(
        json.dumps(c, ensure_ascii=False)
        for c in (
            {"type": "register_customer", "external_ref": "C-1"},
            {"type": "answer_survey", "customer": "C-1", "survey_id": "S-1", "metric": "nps",
             "score": 3, "topic": "service_attitude"},
            {"type": "answer_survey", "customer": "C-1", "survey_id": "S-2", "metric": "nps",
             "score": 3, "topic": "Service Attitude"},
            {"type": "answer_survey", "customer": "C-1", "survey_id": "S-3", "metric": "nps",
             "score": 3, "topic": 7},
        )
    )  # fmt: skip
    code, out, _ = run(store_url, "exec", "-", input=commands + "\n")
    results = lines(out)
    assert code == 1
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert ALLOWED in str(results[2]["error"]) and "'Service Attitude'" in str(results[2]["error"])
    assert "$.topic" in str(results[3]["error"])
    with CRM(store_url) as crm:
        assert topics_of(crm) == {"S-1": "service_attitude"}


@pytest.fixture
def second_store(store_url: str) -> Iterator[str]:
    """Another empty store of the same kind as ``store_url``."""
    if store_url.startswith("sqlite"):
        yield store_url.replace("crm.db", "copy.db")
        return
    require_postgres()
    url, schema = new_postgres_url()
    try:
        yield url
    finally:
        drop_schema(schema)


def test_an_audit_export_carries_topics_into_another_store_byte_for_byte(
    store_url: str, second_store: str, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    with CRM(store_url) as source:
        source.register_customer(external_ref="C-1")
        source.answer_survey(customer="C-1", survey_id="S-1", metric="gap", expectation=6,
                             performance=3, topic="product_quality")  # fmt: skip
        source.answer_survey(customer="C-1", survey_id="S-2", metric="csat", score=5)
        set_survey_topics(source, ["product_quality"])  # what the target allows does not matter
        with path.open("wb") as f:
            export_history(source, f.write)
        stored = [bytes(s.state) for s in source.recorder.select_events(customer_id_for_ref("C-1"))]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    readable = {r["record"]["survey_id"]: r["record"].get("topic") for r in records
                if r["kind"] == "event" and r["record"]["type"] == "SurveyAnswered"}  # fmt: skip
    assert readable == {"S-1": "product_quality", "S-2": None}
    with CRM(second_store) as target:
        import_history(target, path)
        assert topics_of(target) == {"S-1": "product_quality", "S-2": None}
        copied = [bytes(s.state) for s in target.recorder.select_events(customer_id_for_ref("C-1"))]
    assert copied == stored


def test_an_answer_event_stored_before_topics_reads_as_an_overall_answer() -> None:
    # The body of a SurveyAnswered written before the field existed: no "topic" key at all.
    body = msgspec.msgpack.encode(
        {"originator_id": b"\x00" * 16, "originator_version": 2,
         "recorded_at": "2026-01-01T00:00:00+00:00", "occurred_at": "2026-01-01T00:00:00+00:00",
         "actor": "t", "survey_id": "S", "metric": "csat", "score": 4, "scale_min": 1,
         "scale_max": 5}
    )  # fmt: skip
    event = msgspec.msgpack.decode(body, type=ev.SurveyAnswered)
    assert event.topic is msgspec.UNSET and event.score == 4
