"""The demo commands run against a real SQLite store: every one is accepted, and the state is rich."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_es import CRM, CrmError
from crm_es.demo.generator import generate_commands
from crm_es.domain import commands as c
from crm_es.domain.customer import Customer
from crm_es.domain.values import Tier

END = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
SEED = 3  # a population of 60 whose year includes a reopened complaint and a win-back


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CRM, list[c.Command]]]:
    path: Path = tmp_path_factory.mktemp("demo") / "crm.db"
    crm = CRM(f"sqlite:///{path}")
    commands = list(generate_commands(customers=60, years=1, seed=SEED, end=END))
    rejected: list[str] = []
    for command in commands:
        try:
            crm.execute(command)
        except CrmError as error:
            rejected.append(f"{type(error).__name__}: {error} <- {command!r}")
    if rejected:
        crm.close()
        pytest.fail(
            f"{len(rejected)} demo commands rejected, first ones:\n" + "\n".join(rejected[:5])
        )
    try:
        yield crm, commands
    finally:
        crm.close()


@pytest.fixture(scope="module")
def customers(demo_run: tuple[CRM, list[c.Command]]) -> list[Customer]:
    crm, commands = demo_run
    refs = [x.external_ref for x in commands if isinstance(x, c.RegisterCustomer)]
    return [crm.get_customer(ref) for ref in refs if ref]


def test_every_demo_command_is_accepted_by_a_sqlite_store(
    demo_run: tuple[CRM, list[c.Command]], customers: list[Customer]
) -> None:
    _, commands = demo_run
    assert len(customers) == 61  # one registered twice, then merged
    assert sum(x.merged_into is not None for x in customers) == 1
    assert sum(x.version for x in customers) >= len(commands)


def test_some_demo_customers_hold_points_and_reach_a_higher_tier(customers: list[Customer]) -> None:
    assert any(x.points_balance > 0 for x in customers)
    assert all(x.points_balance == sum(lot.remaining for lot in x.lots) for x in customers)
    assert any(x.tier is not Tier.STANDARD for x in customers)


def test_demo_complaints_are_mostly_resolved_and_some_were_reopened(
    customers: list[Customer],
) -> None:
    complaints = [k for x in customers for k in x.complaints.values()]
    resolved = [k for k in complaints if k.status == "resolved"]
    assert len(resolved) > len(complaints) / 2
    assert any(k.reopen_count > 0 for k in complaints)
    assert any(k.followed_up_satisfied is not None for k in complaints)


def test_demo_care_tasks_are_completed_cancelled_or_still_scheduled(
    customers: list[Customer],
) -> None:
    statuses = {t.status for x in customers for t in x.care_tasks.values()}
    assert statuses == {"completed", "cancelled", "scheduled"}


def test_a_demo_customer_is_erased_and_a_churned_one_was_won_back(
    customers: list[Customer],
) -> None:
    erased = [x for x in customers if x.erased]
    assert erased and all(x.name is None and x.email is None for x in erased)
    assert any(x.won_back_count > 0 for x in customers)
    assert any(x.refunded for x in customers)
