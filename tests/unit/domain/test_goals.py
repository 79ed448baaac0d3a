"""Goals of the customer-management plan: given the plan, when a goal command runs, then these
events (or this error, and no event); and the import's rules for a plan history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from crm_es.domain import commands as cmd
from crm_es.domain import goal_events as ge
from crm_es.domain.decide import Envelope
from crm_es.domain.decide.goals import decide_plan
from crm_es.domain.errors import (
    CrmError,
    CustomerNotFound,
    DuplicateId,
    InvalidState,
    InvalidValue,
    UnknownCurrency,
    UnknownId,
)
from crm_es.domain.event_base import CustomerEvent
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.plan import PLAN_ID, GoalMetric, GoalScope, Plan, evolve_plan
from crm_es.domain.plan_rules import plan_event_problem

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)
CSAT = {"goal_id": "G-1", "metric": "csat", "target": "85", "starts_on": "2026-03-01",
        "ends_on": "2026-08-31", "owner": "user:zhou"}  # fmt: skip


def command(type_name: str, **fields: Any) -> cmd.Command:
    return cmd.decode_command(msgspec.json.encode({"type": type_name, **fields}))


def when(plan: Plan, type_name: str, **fields: Any) -> list[CustomerEvent]:
    c = command(type_name, **fields)
    assert isinstance(c, cmd.PlanCommand)
    return decide_plan(plan, c, Envelope.for_command(c, NOW, "user:zhou"))


def given(*steps: tuple[str, dict[str, Any]]) -> Plan:
    plan = Plan()
    for type_name, fields in steps:
        evolve_plan(plan, when(plan, type_name, **fields))
    return plan


def refused(plan: Plan, error: type[CrmError], type_name: str, **fields: Any) -> str:
    with pytest.raises(error) as caught:
        when(plan, type_name, **fields)
    return str(caught.value)


def test_setting_a_goal_records_it_in_the_plans_stream_with_its_actor() -> None:
    (event,) = when(Plan(), "set_goal", **CSAT)
    assert isinstance(event, ge.GoalSet)
    assert (event.originator_id, event.originator_version, event.actor) == (PLAN_ID, 1, "user:zhou")
    assert (event.goal_id, event.metric, event.scope, event.scope_value, event.target) == (
        "G-1", "csat", "all", None, "85",
    )  # fmt: skip
    assert (event.starts_on, event.ends_on, event.owner) == (
        date(2026, 3, 1), date(2026, 8, 31), "user:zhou",
    )  # fmt: skip
    assert event.reason is None and ge.GoalSet.PII_FIELDS == ()
    goal = evolve_plan(Plan(), [event]).goals["G-1"]
    assert (goal.metric, goal.scope, goal.is_open) == (GoalMetric.CSAT, GoalScope.ALL, True)


def test_revising_changes_only_what_differs_and_a_revision_that_changes_nothing_records_nothing() -> (
    None
):
    plan = given(("set_goal", CSAT))
    (event,) = when(plan, "revise_goal", goal_id="G-1", target="85.0", ends_on="2026-09-30",
                    owner="user:zhou")  # fmt: skip
    assert isinstance(event, ge.GoalRevised)
    assert (event.target, event.ends_on, event.owner) == (None, date(2026, 9, 30), None)
    assert when(plan, "revise_goal", goal_id="G-1", target="85.00") == []
    evolve_plan(plan, [event])
    assert plan.goals["G-1"].ends_on == date(2026, 9, 30) and plan.goals["G-1"].target == "85"


def test_closing_a_goal_ends_it_and_a_closed_goal_takes_no_further_step() -> None:
    plan = given(("set_goal", CSAT), ("close_goal", {"goal_id": "G-1"}))
    assert not plan.goals["G-1"].is_open and plan.version == 2
    assert "already closed; cannot revise it" in refused(
        plan, InvalidState, "revise_goal", goal_id="G-1", target="90"
    )
    assert "cannot close it" in refused(plan, InvalidState, "close_goal", goal_id="G-1")


@pytest.mark.parametrize(
    ("error", "fields", "words"),
    [
        (InvalidValue, {"target": "101"}, "a csat target lies between 0 and 100"),
        (InvalidValue, {"target": "-1"}, "between 0 and 100"),
        (InvalidValue, {"metric": "nps", "target": "-101"}, "between -100 and 100"),
        (InvalidValue, {"metric": "ces", "target": "0.5"}, "between 1 and 7"),
        (InvalidValue, {"metric": "win_rate", "target": "100.01"}, "between 0 and 100"),
        (InvalidValue, {"ends_on": "2026-03-01"}, "the period must end after it starts"),
        (InvalidValue, {"ends_on": "2026-02-01"}, "ends_on"),
        (InvalidValue, {"metric": "revenue", "target": "1000"}, "names the currency"),
        (InvalidValue, {"currency": "CNY"}, "only a revenue goal has a currency"),
        (InvalidValue, {"metric": "revenue", "target": "10.001", "currency": "CNY"}, "target"),
        (InvalidValue, {"metric": "revenue", "target": "-5", "currency": "CNY"}, "not negative"),
        (UnknownCurrency, {"metric": "revenue", "target": "10", "currency": "XYZ"}, "XYZ"),
        (InvalidValue, {"scope": "region"}, "scope 'region' needs the region it is for"),
        (InvalidValue, {"scope_value": "华东"}, "scope 'all' names no segment"),
    ],
)
def test_a_goal_that_breaks_a_rule_is_refused_with_the_rule(
    error: type[CrmError], fields: dict[str, Any], words: str
) -> None:
    assert words in refused(Plan(), error, "set_goal", **(CSAT | fields))


def test_unknown_metrics_and_scopes_are_schema_errors_naming_the_allowed_values() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        command("set_goal", **(CSAT | {"metric": "happiness"}))
    assert "$.metric" in str(caught.value) and "complaint_sla_breach_rate" in str(caught.value)
    with pytest.raises(msgspec.ValidationError) as caught:
        command("set_goal", **(CSAT | {"scope": "city", "scope_value": "上海"}))
    assert "$.scope" in str(caught.value) and "segment, owner, region" in str(caught.value)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.target"):
        command("set_goal", **(CSAT | {"target": 85}))  # a JSON number: never a figure
    with pytest.raises(msgspec.ValidationError, match="unknown field `customer`"):
        command("close_goal", goal_id="G-1", customer="C-1")  # a plan command names no one


def test_goal_ids_are_unique_and_unknown_ones_refused() -> None:
    plan = given(("set_goal", CSAT))
    assert "goal 'G-1' already exists in the customer-management plan" in refused(
        plan, DuplicateId, "set_goal", **CSAT
    )
    assert "unknown goal 'G-9' in the customer-management plan" in refused(
        plan, UnknownId, "close_goal", goal_id="G-9"
    )
    assert "give at least one" in refused(plan, InvalidValue, "revise_goal", goal_id="G-1")
    assert "ends_on" in refused(
        plan, InvalidValue, "revise_goal", goal_id="G-1", ends_on="2026-02-28"
    )


def test_the_plans_stream_is_no_customers() -> None:
    with pytest.raises(CustomerNotFound):
        customer_id_for_ref(str(PLAN_ID))
    with pytest.raises(CustomerNotFound):
        customer_id_for_ref(PLAN_ID)


def test_the_import_rules_accept_what_the_deciders_write_and_refuse_a_forged_history() -> None:
    plan = Plan()
    events = when(plan, "set_goal", **CSAT)
    assert plan_event_problem(plan, events[0]) is None
    evolve_plan(plan, events)
    (closed,) = when(plan, "close_goal", goal_id="G-1")
    again = msgspec.structs.replace(closed, originator_version=3)
    assert plan_event_problem(plan, again) == "version 3 after version 1"
    evolve_plan(plan, [closed])
    forged = [
        (msgspec.structs.replace(events[0], originator_version=3), "goal 'G-1' set twice"),
        (msgspec.structs.replace(closed, originator_version=3), "after it was closed"),
        (msgspec.structs.replace(events[0], originator_version=3, goal_id="G-2", target="900"),
         "a csat target of 900 is out of range"),
        (msgspec.structs.replace(events[0], originator_version=3, goal_id="G-2", scope="region"),
         "scope 'region' with scope value None"),
        (msgspec.structs.replace(events[0], originator_version=3, goal_id="G-2",
                                 ends_on=date(2026, 1, 1)), "the period must end after it starts"),
        (msgspec.structs.replace(events[0], originator_version=3, goal_id="G-2",
                                 ends_on=date(9999, 12, 31)), "lies between 1970-01-01 and"),
        (msgspec.structs.replace(events[0], originator_version=3, goal_id="G-2", actor=" "),
         "no actor"),
    ]  # fmt: skip
    for event, why in forged:
        assert why in (plan_event_problem(plan, event) or ""), why
    # a step dated before its goal's set (the report as of a date between would lose the goal)
    fresh = evolve_plan(Plan(), events)
    revised = when(fresh, "revise_goal", goal_id="G-1", target="90")[0]
    early = msgspec.structs.replace(revised, occurred_at=events[0].occurred_at.replace(year=2025))
    assert "a step cannot be dated before it" in (plan_event_problem(fresh, early) or "")


def test_a_plan_command_with_a_free_text_reason_is_refused_without_echoing_it() -> None:
    """The plan's stream has no personal-data key: a reason naming a person would stay in clear."""
    message = refused(Plan(), InvalidValue, "set_goal", **CSAT, reason="王芳 +86 138 0000 0000")
    assert message.startswith("reason: plan commands carry no free-text reason")
    assert "王芳" not in message and "138" not in message


@pytest.mark.parametrize(
    ("starts_on", "ends_on", "field"),
    [("2026-01-01", "9999-12-31", "ends_on"), ("0001-01-01", "2026-12-31", "starts_on"),
     ("2026-01-01", "2040-12-31", "ends_on")],
)  # fmt: skip
def test_a_period_outside_the_years_a_plan_covers_is_refused(
    starts_on: str, ends_on: str, field: str
) -> None:
    period = {"starts_on": starts_on, "ends_on": ends_on}
    message = refused(Plan(), InvalidValue, "set_goal", **(CSAT | period))
    assert message.startswith(f"{field}: a goal's period")


def test_a_step_dated_before_the_goals_latest_step_is_refused() -> None:
    plan = evolve_plan(Plan(), when(Plan(), "set_goal", **CSAT, occurred_at="2026-03-01T00:00:00Z"))
    early = {"occurred_at": "2026-02-01T00:00:00Z"}
    for step, fields in (("revise_goal", {"target": "90"}), ("close_goal", {})):
        message = refused(plan, InvalidValue, step, goal_id="G-1", **fields, **early)
        assert "a step cannot be dated before it" in message


def test_a_stored_step_without_its_goal_as_of_a_date_is_skipped_not_a_key_error() -> None:
    """A history stored before such steps were refused: the step is seen as of a date before
    its goal's set; the plan then has no goal yet, and the report no KeyError (red team g1)."""
    plan = given(("set_goal", CSAT | {"occurred_at": "2026-02-01T10:00:00+00:00"}))
    (step,) = when(plan, "close_goal", goal_id="G-1", occurred_at="2026-02-10T10:00:00+00:00")
    seen = evolve_plan(Plan(), [msgspec.structs.replace(step, originator_version=1)])
    assert seen.goals == {} and seen.version == 1
