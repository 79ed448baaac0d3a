"""Helpers for read-model tests: fill a store, dump a read model's rows for comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crm_es import CRM
from crm_es.projections import ProjectionEngine

START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def populate(crm: CRM, customers: int = 6, rounds: int = 4) -> None:
    """A small varied population: every read model gets rows."""
    for i in range(customers):
        ref = f"C-{i}"
        t = START + timedelta(days=i)
        crm.register_customer(
            external_ref=ref,
            owner=f"staff:{i % 3}",
            tags=["vip"] if i % 2 else [],
            birthday="1990-06-05",
            occurred_at=t,
        )
        for r in range(rounds):
            when = t + timedelta(days=30 * r + i)
            crm.record_purchase(
                customer=ref,
                order_id=f"O-{r}",
                amount=f"{100 + 37 * i * r}.50",
                currency="CNY",
                occurred_at=when,
            )
            crm.answer_survey(
                customer=ref,
                survey_id=f"S-{r}",
                metric="csat",
                score=1 + (i + r) % 5,
                occurred_at=when,
            )
        crm.file_complaint(
            customer=ref,
            complaint_id="K-1",
            category="delivery",
            severity="high",
            occurred_at=t + timedelta(days=3),
        )
        if i % 2:
            crm.resolve_complaint(
                customer=ref,
                complaint_id="K-1",
                resolution="fixed",
                occurred_at=t + timedelta(days=4),
            )
        crm.schedule_care_task(
            customer=ref, task_id="T-1", kind="return_visit", due_on="2025-03-01", occurred_at=t
        )
        if i % 3 == 0:
            crm.refund_purchase(
                customer=ref, order_id="O-0", amount="10", occurred_at=t + timedelta(days=5 + i)
            )
            crm.churn_customer(
                customer=ref, churn_reason="moved", occurred_at=t + timedelta(days=200)
            )


def dump(engine: ProjectionEngine, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of read model ``name`` (active generation), sorted."""
    with engine.db.reading() as tx:
        tables = engine.active_tables(tx, name)
        return {
            logical: sorted(tx.query(f"SELECT * FROM {physical}"), key=repr)
            for logical, physical in tables.items()
        }


def generation(engine: ProjectionEngine, name: str) -> int:
    return next(s.generation for s in engine.status() if s.name == name)
