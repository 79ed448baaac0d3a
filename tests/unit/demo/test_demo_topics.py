"""The demo's survey answers name topics, so the drivers report has factors to rank: every
topic is a default one, the relationship NPS stays an overall answer, unhappy answers lean to
delivery and after-sale, and the same seed draws the same topics."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from crm_es.demo.generator import generate_commands
from crm_es.domain import commands as c
from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS
from crm_es.domain.values import Metric

END = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)


def answers(seed: int = 7) -> list[c.AnswerSurvey]:
    return [
        x
        for x in generate_commands(customers=300, years=2.0, seed=seed, end=END)
        if isinstance(x, c.AnswerSurvey)
    ]


def test_demo_answers_name_default_topics_and_nps_stays_overall() -> None:
    drawn = answers()
    topics = Counter(a.topic for a in drawn if isinstance(a.topic, str))
    assert set(topics) <= set(DEFAULT_SURVEY_TOPICS)
    assert {"product_quality", "delivery", "price", "service_attitude", "after_sale"} <= set(topics)
    assert all(not isinstance(a.topic, str) for a in drawn if a.metric is Metric.NPS)
    assert all(isinstance(a.topic, str) for a in drawn if a.metric is not Metric.NPS)
    # CSAT 1-2 name delivery more often than 4-5 do (the demo's factor to fix first).
    csat = [a for a in drawn if a.metric is Metric.CSAT and isinstance(a.score, int)]
    low = [a for a in csat if a.score is not None and a.score <= 2]
    high = [a for a in csat if a.score is not None and a.score >= 4]
    assert delivery_share(low) > delivery_share(high)


def delivery_share(group: list[c.AnswerSurvey]) -> float:
    return sum(a.topic == "delivery" for a in group) / len(group)


def test_the_same_seed_draws_the_same_topics() -> None:
    assert [a.topic for a in answers(3)] == [a.topic for a in answers(3)]
