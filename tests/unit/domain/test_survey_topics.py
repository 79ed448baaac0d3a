"""Survey topics: an answer may name the factor it rates, one of the store's topics; an unknown
topic is refused with the allowed ones and nothing is decided; answers without one stay as they
were (no topic on the event, the same idempotency bytes as before topics existed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from msgspec import UNSET

from crm_es.app.results import payload_hash
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.errors import InvalidValue
from crm_es.domain.history_rules import history_problem
from crm_es.domain.survey_topics import (
    DEFAULT_SURVEY_TOPICS,
    MAX_TOPICS,
    TOPIC_LABELS,
    check_topic,
    parse_topics,
)
from tests.helpers.domain import CID, NOW, command, registered, when

ALLOWED_TEXT = (
    "topic: not a survey topic of this store; allowed: product_quality, delivery, price, "
    "service_attitude, after_sale, other (crm-es settings survey-topics changes the list) "
    "(got 'Delivery')"
)


def answer(**fields: Any) -> cmd.Command:
    return command("answer_survey", survey_id="S-1", metric="csat", score=4, **fields)


def test_an_answer_carries_its_topic_onto_the_event() -> None:
    (event,) = when(registered(), answer(topic="delivery"))
    assert isinstance(event, ev.SurveyAnswered)
    assert event.topic == "delivery"
    assert ev.event_to_dict(event)["topic"] == "delivery"


def test_an_unknown_topic_is_refused_naming_every_allowed_topic() -> None:
    with pytest.raises(InvalidValue) as refused:
        when(registered(), answer(topic="Delivery"))
    assert str(refused.value) == ALLOWED_TEXT
    assert refused.value.field == "topic"


@pytest.mark.parametrize("fields", [{}, {"topic": None}])
def test_an_answer_without_a_topic_is_an_overall_answer_with_no_topic_stored(
    fields: dict[str, Any],
) -> None:
    (event,) = when(registered(), answer(**fields))
    assert isinstance(event, ev.SurveyAnswered)
    assert event.topic is UNSET
    assert "topic" not in ev.event_to_dict(event)  # the bytes of answers stored before topics


def test_the_store_list_in_the_envelope_decides_which_topics_are_accepted() -> None:
    customer = registered()

    def decided(topic: str) -> list[ev.CustomerEvent]:
        c = answer(topic=topic)
        envelope = Envelope.for_command(c, NOW, "test", UTC, ("packaging", "delivery_speed"))
        return decide(customer, c, envelope, CID)

    (event,) = decided("packaging")
    assert isinstance(event, ev.SurveyAnswered) and event.topic == "packaging"
    with pytest.raises(InvalidValue, match=r"allowed: packaging, delivery_speed \("):
        decided("delivery")


def test_a_topic_goes_through_the_wire_format_and_keeps_other_answers_hashes() -> None:
    wire = '{"type":"answer_survey","customer":"C-1","survey_id":"S","metric":"nps","score":9,'
    topical = cmd.decode_command(wire + '"topic":"price"}')
    assert isinstance(topical, cmd.AnswerSurvey) and topical.topic == "price"
    # An answer without a topic hashes as it did before the field existed, so a re-send of a
    # command stored by an earlier version is still recognised as done.
    plain = cmd.decode_command(wire + '"command_id":"K-1"}')

    class Before(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="answer_survey"):
        command_id: str | None = None
        actor: str | None = None
        correlation_id: str | None = None
        causation_id: str | None = None
        reason: str | None = None
        occurred_at: datetime | None = None
        customer: str
        survey_id: str
        metric: str
        score: int | None = None
        expectation: int | None = None
        performance: int | None = None
        scale_min: int | None = None
        scale_max: int | None = None
        comment: str | None = None
        channel: str | None = None

    before = Before(customer="C-1", survey_id="S", metric="nps", score=9, command_id="K-1")
    key = b"k" * 32
    assert msgspec.msgpack.encode(plain) == msgspec.msgpack.encode(before)
    assert payload_hash(plain, key) != payload_hash(topical, key)


def test_a_configured_list_is_checked_and_kept_in_order() -> None:
    assert parse_topics([" packaging", "delivery ", "a1_b"]) == ("packaging", "delivery", "a1_b")
    assert parse_topics(DEFAULT_SURVEY_TOPICS) == DEFAULT_SURVEY_TOPICS
    assert set(TOPIC_LABELS) == set(DEFAULT_SURVEY_TOPICS)
    assert TOPIC_LABELS["delivery"] == "物流配送"


@pytest.mark.parametrize(
    ("topics", "message"),
    [
        ([], "survey_topics: name at least one topic (got [])"),
        ([""], "survey_topics: name at least one topic (got [''])"),
        (["price", "物流"], "survey_topics: a topic is lower-case ASCII letters, digits and _, "
                            "a letter first, ≤ 48 characters (got '物流')"),
        (["Price"], "(got 'Price')"),
        (["1st"], "(got '1st')"),
        (["a" * 49], "≤ 48 characters"),
        (["price", "delivery", "price"], "survey_topics: listed twice (got 'price')"),
        ([f"t{i}" for i in range(MAX_TOPICS + 1)], "at most 100 topics (got 101)"),
    ],
)  # fmt: skip
def test_a_bad_topic_list_is_refused_saying_why(topics: list[str], message: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_topics(topics)
    assert message in str(refused.value)


def test_check_topic_accepts_exactly_the_listed_codes() -> None:
    check_topic("price", DEFAULT_SURVEY_TOPICS)
    with pytest.raises(InvalidValue, match="allowed: a, b "):
        check_topic("price", ("a", "b"))


def _history(topic: str) -> list[ev.CustomerEvent]:
    oid, at = uuid4(), datetime(2026, 1, 1, tzinfo=UTC)
    env = {"originator_id": oid, "recorded_at": at, "occurred_at": at, "actor": "t"}
    return [
        ev.CustomerRegistered(originator_version=1, external_ref="C-9", **env),
        ev.SurveyAnswered(
            originator_version=2, survey_id="S", metric="csat", score=3, scale_min=1,
            scale_max=5, topic=topic, **env,
        ),
    ]  # fmt: skip


def test_an_imported_history_may_carry_any_topic_code_but_never_free_text() -> None:
    assert history_problem(_history("packaging")) is None  # another store's list
    assert history_problem(_history("王芳的电话 138")) == (
        2,
        "a topic '王芳的电话 138' that is no topic code",
    )
