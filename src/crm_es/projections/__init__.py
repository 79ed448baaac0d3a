"""Read models (projections) and the reports computed from them.

``read_models()`` lists the read models; ``ProjectionEngine(app, read_models())`` runs them.
"""

from __future__ import annotations

from crm_es.projections.care_facts import CareFacts
from crm_es.projections.customer_facts import CustomerFacts
from crm_es.projections.engine import ProjectionEngine, ReadModel
from crm_es.projections.feedback_facts import FeedbackFacts


def read_models() -> list[ReadModel]:
    return [CustomerFacts(), FeedbackFacts(), CareFacts()]


__all__ = ["ProjectionEngine", "ReadModel", "read_models"]
