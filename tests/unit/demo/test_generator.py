"""The demo data generator: deterministic, well-timed, complete, and accepted by the domain."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from crm_es.demo.generator import generate_commands, summarize
from crm_es.domain import commands as c
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.decide.goals import decide_plan
from crm_es.domain.decide.merges import decide_merge
from crm_es.domain.errors import CrmError
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.plan import Plan, evolve_plan
from crm_es.domain.values import (
    CareKind,
    Category,
    Channel,
    Direction,
    Metric,
    ServiceKind,
    ServicePhase,
    Severity,
)

END = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)


def at(command: c.Command) -> datetime:
    assert command.occurred_at is not None, command
    return command.occurred_at


def commands(customers: int, years: float = 2.0, seed: int = 7) -> list[c.Command]:
    return list(generate_commands(customers=customers, years=years, seed=seed, end=END))


@pytest.fixture(scope="module")
def population() -> list[c.Command]:
    return commands(300)


def test_the_same_seed_yields_the_same_commands() -> None:
    assert commands(40, years=1) == commands(40, years=1)


def test_another_seed_yields_other_commands() -> None:
    assert commands(40, years=1, seed=1) != commands(40, years=1, seed=2)


def test_business_times_never_decrease(population: list[c.Command]) -> None:
    times = [at(command) for command in population]
    assert all(a <= b for a, b in itertools.pairwise(times))


def test_every_business_time_is_aware_and_within_the_period(population: list[c.Command]) -> None:
    start = END - timedelta(days=365.25 * 2)
    for command in population:
        assert at(command).utcoffset() in (timedelta(0), timedelta(hours=8))
        assert start <= at(command) <= END, command


def test_every_command_has_a_unique_command_id_and_names_whom_it_acts_for(
    population: list[c.Command],
) -> None:
    ids = [command.command_id for command in population]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "demo-7-1"
    # the actor is whoever runs the demo; staff and channels are named as on whose behalf
    assert all(command.actor is None for command in population)
    persons = {command.on_behalf_of for command in population}
    assert {"user:dpo", "api:shop"} <= persons
    assert any(isinstance(p, str) and p.startswith("user:") for p in persons)


def test_a_population_of_300_uses_the_whole_command_vocabulary(
    population: list[c.Command],
) -> None:
    assert set(summarize(population)) == set(c.COMMAND_TYPES)


def test_a_population_of_300_covers_every_channel_phase_severity_metric_and_care_kind(
    population: list[c.Command],
) -> None:
    contacts = [x for x in population if isinstance(x, c.LogContact)]
    contact_channels = {Channel.PHONE, Channel.EMAIL, Channel.WECHAT, Channel.SOCIAL}
    contact_channels |= {Channel.CHAT, Channel.VISIT, Channel.SMS}
    assert {x.channel for x in contacts} == contact_channels
    assert {x.direction for x in contacts} == set(Direction)
    purchases = [x for x in population if isinstance(x, c.RecordPurchase)]
    assert {x.channel for x in purchases} == {
        Channel.STORE,
        Channel.ONLINE,
        Channel.APP,
        Channel.WECHAT,
    }
    services = [x for x in population if isinstance(x, c.RecordService)]
    assert {x.phase for x in services} == set(ServicePhase)
    assert {x.kind for x in services} == set(ServiceKind)
    assert {x.severity for x in population if isinstance(x, c.FileComplaint)} == set(Severity)
    assert {x.metric for x in population if isinstance(x, c.AnswerSurvey)} == set(Metric)
    assert {x.kind for x in population if isinstance(x, c.ScheduleCareTask)} == set(CareKind)
    registrations = [x for x in population if isinstance(x, c.RegisterCustomer)]
    assert {x.category for x in registrations} >= set(Category) - {Category.INTERNAL}
    assert {x.region for x in registrations} == {
        "华东",
        "华南",
        "华北",
        "华中",
        "西南",
        "西北",
        "东北",
    }


def test_survey_scores_are_skewed_towards_satisfied_customers(
    population: list[c.Command],
) -> None:
    csat = Counter(
        x.score for x in population if isinstance(x, c.AnswerSurvey) and x.metric is Metric.CSAT
    )
    assert set(csat) == {1, 2, 3, 4, 5}
    assert csat[4] + csat[5] > csat[1] + csat[2] + csat[3]


def test_purchases_peak_around_double_eleven(population: list[c.Command]) -> None:
    by_month = Counter(
        at(x).month for x in population if isinstance(x, c.RecordPurchase) and at(x).year == 2025
    )
    assert by_month[11] > by_month[9] and by_month[11] > by_month[10]


def test_every_command_survives_the_json_wire_format() -> None:
    encoder = msgspec.json.Encoder()
    for command in commands(100, years=1):
        assert c.decode_command(encoder.encode(command)) == command


def test_the_pure_domain_accepts_every_command_of_a_population_of_300(
    population: list[c.Command],
) -> None:
    customers: dict[UUID, Customer] = {}
    rejected: list[tuple[c.Command, CrmError]] = []
    now = END + timedelta(hours=1)
    plan = Plan()
    for command in population:
        if isinstance(command, c.PlanCommand):  # the plan's own stream
            try:
                evolve_plan(
                    plan, decide_plan(plan, command, Envelope.for_command(command, now, "x"))
                )
            except CrmError as error:
                rejected.append((command, error))
            continue
        if isinstance(command, c.RegisterCustomer):
            customer_id = customer_id_for_ref(command.external_ref or "")
        else:
            assert isinstance(command, c.CustomerCommand)
            customer_id = customer_id_for_ref(command.customer)
        customer = customers.get(customer_id)
        if isinstance(command, c.MergeCustomers):  # two streams
            into = customer_id_for_ref(command.into)
            envelope = Envelope.for_command(command, now, "x")
            closing, absorbing = decide_merge(
                customer, customers.get(into), command, envelope, customer_id, into
            )
            customers[into] = evolve(customers[into], absorbing)  # type: ignore[assignment]
            customers[customer_id] = evolve(customer, closing)  # type: ignore[assignment]
            continue
        try:
            events = decide(customer, command, Envelope.for_command(command, now, "x"), customer_id)
        except CrmError as error:
            rejected.append((command, error))
            continue
        for event in events:
            customer = evolve(customer, (event,))
        assert customer is not None
        customers[customer_id] = customer
    assert rejected == [], rejected[:5]
    assert sum(x.erased for x in customers.values()) >= 1
    assert sum(x.merged_into is not None for x in customers.values()) == 1
    assert [g.is_open for g in plan.goals.values()] == [False, True, True, True]
    assert any(x.points_balance > 0 for x in customers.values())


def test_summarize_counts_commands_by_wire_type() -> None:
    sample = commands(10, years=1)
    counts = summarize(sample)
    assert counts["register_customer"] == 10 + counts.get("merge_customers", 0)  # twice, merged
    assert sum(counts.values()) == len(sample)
    assert list(counts) == sorted(counts)


def test_the_default_end_is_an_hour_before_now_rounded_down_to_the_hour() -> None:
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    latest = max(at(x) for x in generate_commands(customers=30, years=0.5))
    assert latest <= before + timedelta(hours=1)
    assert latest > before - timedelta(days=60)


def test_a_naive_end_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next(generate_commands(customers=1, end=datetime(2025, 1, 1)))


def test_erased_customers_get_no_commands_after_their_erasure(
    population: list[c.Command],
) -> None:
    erased: set[str] = set()
    for command in population:
        customer = getattr(command, "customer", None)
        assert customer not in erased, command
        if isinstance(command, c.ErasePersonalData):
            erased.add(command.customer)
    assert erased


def test_points_expire_about_a_year_after_they_are_granted(population: list[c.Command]) -> None:
    grants = [x for x in population if isinstance(x, c.GrantPoints)]
    expiring = [x for x in grants if x.expires_on is not None]
    assert 0 < len(expiring) < len(grants)
    for grant in expiring:
        assert grant.expires_on is not None
        assert grant.expires_on - at(grant).date() in (timedelta(180), timedelta(365))


def test_the_default_population_yields_at_least_50_000_commands() -> None:
    counts = summarize(generate_commands(end=END))
    assert sum(counts.values()) >= 50_000
    assert counts["register_customer"] == 2001 and counts["merge_customers"] == 1
