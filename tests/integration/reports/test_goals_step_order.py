"""A history stored before a goal's steps were refused a date before its latest (a step dated
before its goal's set) is reported without error, on SQLite and PostgreSQL (red team g1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_es import CRM
from crm_es.domain.decide import goals as goal_decider
from crm_es.reports import Reports
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery
from tests.helpers.stores import module_store

GOAL = {"goal_id": "G-B", "metric": "csat", "target": "80", "owner": "user:m",
        "starts_on": "2026-06-01", "ends_on": "2026-12-31"}  # fmt: skip
SET_AT, EARLIER = "2026-06-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with module_store(request, tmp_path_factory) as found:
        yield found


def test_a_stored_step_dated_before_its_goal_is_reported_without_error(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(goal_decider, "_check_step", lambda goal, envelope: None)  # the old release
    with CRM(url) as crm:
        crm.set_goal(occurred_at=SET_AT, **GOAL)
        crm.revise_goal(goal_id="G-B", target="90", occurred_at=EARLIER)
        crm.close_goal(goal_id="G-B", occurred_at="2026-01-15T00:00:00+00:00")
        with Reports(crm) as r:
            # As of March the steps are seen and the goal is not: no goal, no KeyError.
            assert r.goals(as_of="2026-03-01").goals == []
            (goal,) = r.goals(as_of="2026-07-01").goals
            page = render_html(r, ReportQuery.at("2026-03-01", None, tz=crm.store.timezone))
    # As of July all three are seen, in the order stored: set, revised to 90, closed.
    assert (goal.goal_id, goal.target, goal.status) == ("G-B", "90", "closed")
    assert "Goals of the plan" in page
