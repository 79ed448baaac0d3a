"""Survey topics: the factor a survey answer is about (产品质量, 物流配送, 价格, 服务态度, 售后 …).

An answer without a topic is an *overall* answer ("how satisfied are you with us"); one with a
topic rates that factor alone, which is what the ``drivers`` report ranks. The topics a store
accepts are configuration (``crm-es settings survey-topics``), kept in the store: the
decider checks a command's topic against the list its envelope carries, so a typo is refused
with the allowed values instead of becoming a factor of its own. Pure: no I/O.

Topic names are snake_case ASCII codes, never free text: they are stored in clear on events and
read-model rows (a code cannot carry personal data) and grouped by in reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from crm_es.domain.errors import InvalidValue

TOPIC_PATTERN: Final = r"^[a-z][a-z0-9_]{0,47}\Z"
"""A topic code: lower-case ASCII letters, digits and ``_``, a letter first, at most 48
characters (``product_quality``)."""

DEFAULT_SURVEY_TOPICS: Final[tuple[str, ...]] = (
    "product_quality",  # 产品质量
    "delivery",  # 物流配送
    "price",  # 价格
    "service_attitude",  # 服务态度
    "after_sale",  # 售后
    "other",  # 其他
)
"""The topics a store accepts until its settings say otherwise."""

TOPIC_LABELS: Final[dict[str, str]] = {
    "product_quality": "产品质量",
    "delivery": "物流配送",
    "price": "价格",
    "service_attitude": "服务态度",
    "after_sale": "售后",
    "other": "其他",
}
"""The seeds' Chinese terms of the default topics, for people reading a report."""

MAX_TOPICS: Final = 100
_TOPIC: Final = re.compile(TOPIC_PATTERN)


def parse_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """A configured topic list, checked: each a topic code, none twice, at least one, at most
    ``MAX_TOPICS``; kept in the order given (the order reports list them in)."""
    listed = [t.strip() for t in topics]
    if not listed or not any(listed):
        raise InvalidValue("survey_topics", listed, "name at least one topic")
    bad = [t for t in listed if not is_topic_code(t)]
    if bad:
        why = "a topic is lower-case ASCII letters, digits and _, a letter first, ≤ 48 characters"
        raise InvalidValue("survey_topics", bad[0], why)
    twice = sorted({t for t in listed if listed.count(t) > 1})
    if twice:
        raise InvalidValue("survey_topics", twice[0], "listed twice")
    if len(listed) > MAX_TOPICS:
        raise InvalidValue("survey_topics", len(listed), f"at most {MAX_TOPICS} topics")
    return tuple(listed)


def is_topic_code(text: str) -> bool:
    """Whether ``text`` has the form of a topic code (whichever store's list holds it)."""
    return _TOPIC.match(text) is not None


def check_topic(topic: str, allowed: Iterable[str]) -> None:
    """Raise ``InvalidValue`` naming the allowed topics unless ``topic`` is one of them."""
    allowed = tuple(allowed)
    if topic not in allowed:
        why = (
            f"not a survey topic of this store; allowed: {', '.join(allowed)} "
            "(crm-es settings survey-topics changes the list)"
        )
        raise InvalidValue("topic", topic, why)
