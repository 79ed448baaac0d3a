"""Read models (projections) and the reports computed from them.

``read_models()`` lists the read models; ``ProjectionEngine(app, read_models())`` runs them;
``crm_es.reports.api.Reports`` is the query API.
"""

from __future__ import annotations

from crm_es.projections.engine import ProjectionEngine
from crm_es.projections.models import read_models
from crm_es.projections.read_model import ReadModel

__all__ = ["ProjectionEngine", "ReadModel", "read_models"]
