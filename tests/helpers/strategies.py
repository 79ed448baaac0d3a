"""Hypothesis strategies: random commands on one customer, biased to the ids and amounts that
collide with each other and with the rules."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ORDERS = st.sampled_from(["O-1", "O-2", "O-3"])


COMPLAINTS = st.sampled_from(["K-1", "K-2"])


TASKS = st.sampled_from(["T-1", "T-2"])


AMOUNTS = st.sampled_from(["0", "0.01", "19.90", "129.90", "5000", "-1", "1.001", "NaN"])


def command_strategy() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("record_purchase"),
                "order_id": ORDERS,
                "amount": AMOUNTS,
                "currency": st.just("CNY"),
            }
        ),
        st.fixed_dictionaries(
            {"type": st.just("refund_purchase"), "order_id": ORDERS}, optional={"amount": AMOUNTS}
        ),
        st.fixed_dictionaries({"type": st.just("grant_points"), "points": st.integers(1, 300)}),
        st.fixed_dictionaries({"type": st.just("redeem_points"), "points": st.integers(1, 300)}),
        st.fixed_dictionaries(
            {
                "type": st.just("file_complaint"),
                "complaint_id": COMPLAINTS,
                "category": st.just("delivery"),
                "severity": st.sampled_from(["low", "high", "critical"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["resolve_complaint"]),
                "complaint_id": COMPLAINTS,
                "resolution": st.just("fixed"),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["reopen_complaint", "escalate_complaint"]),
                "complaint_id": COMPLAINTS,
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("follow_up_complaint"),
                "complaint_id": COMPLAINTS,
                "satisfied": st.booleans(),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("answer_survey"),
                "survey_id": st.sampled_from(["S-1", "S-2"]),
                "metric": st.sampled_from(["csat", "nps"]),
                "score": st.integers(-1, 11),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("schedule_care_task"),
                "task_id": TASKS,
                "kind": st.just("return_visit"),
                "due_on": st.just("2030-01-01"),
            }
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["complete_care_task", "cancel_care_task"]), "task_id": TASKS}
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["churn_customer"]), "churn_reason": st.just("moved")}
        ),
        st.fixed_dictionaries({"type": st.just("win_back_customer")}),
        st.fixed_dictionaries(
            {
                "type": st.just("change_tags"),
                "add": st.lists(st.sampled_from(["a", "b"]), max_size=2),
                "remove": st.lists(st.sampled_from(["b", "c"]), max_size=2),
            }
        ),
    )
