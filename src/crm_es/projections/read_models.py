"""The list of read models the engine runs (one place to add a new one)."""

from __future__ import annotations

from crm_es.projections.care_facts import CareFacts
from crm_es.projections.customer_facts import CustomerFacts
from crm_es.projections.feedback_facts import FeedbackFacts
from crm_es.projections.read_model import ReadModel


def read_models() -> list[ReadModel]:
    return [CustomerFacts(), FeedbackFacts(), CareFacts()]
