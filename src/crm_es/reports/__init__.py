"""Reports computed at query time from the read models' fact rows: segments, satisfaction,
churn, agenda, KPIs and the HTML report. ``from crm_es.reports import Reports`` is the query API.

Depends on :mod:`crm_es.projections` (to bring read models up to date and find their tables),
:mod:`crm_es.analytics`, :mod:`crm_es.store` and :mod:`crm_es.domain`; never on the service.
Names load on first use, so a module of this package can be imported without numpy and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_es.reports.api import Reports

__all__ = ["Reports"]


def __getattr__(name: str) -> Any:
    if name == "Reports":
        from crm_es.reports.api import Reports

        return Reports
    raise AttributeError(f"module 'crm_es.reports' has no attribute {name!r}")
