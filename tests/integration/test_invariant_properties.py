"""Random command sequences never break an invariant, and reloading gives the same customer.

Each hypothesis example drives a fresh customer (own external ref) through the real service and
store; commands that break a rule must raise a CrmError and store nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer

ORDERS = st.sampled_from(["O-1", "O-2", "O-3"])
COMPLAINTS = st.sampled_from(["K-1", "K-2"])
TASKS = st.sampled_from(["T-1", "T-2"])
AMOUNTS = st.sampled_from(["0", "0.01", "19.90", "129.90", "5000", "-1", "1.001", "NaN"])


def _command() -> st.SearchStrategy[dict[str, Any]]:
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


def _check_invariants(c: Customer) -> None:
    assert c.points_balance >= 0
    assert c.points_balance == sum(lot.remaining for lot in c.lots)
    assert all(lot.remaining > 0 for lot in c.lots)
    for order in c.orders.values():
        assert 0 <= order.refunded <= order.amount
    assert sum(o.amount for o in c.orders.values()) == sum(c.paid.values())
    assert sum(o.refunded for o in c.orders.values()) == sum(c.refunded.values())
    assert all(k.status in {"open", "escalated", "resolved"} for k in c.complaints.values())
    assert all(
        (k.status == "resolved") == (k.resolved_at is not None) for k in c.complaints.values()
    )
    assert all(t.status in {"scheduled", "completed", "cancelled"} for t in c.care_tasks.values())
    assert len(set(c.surveys_answered)) == len(c.surveys_answered)
    assert c.tags == sorted(set(c.tags))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(commands=st.lists(_command(), min_size=1, max_size=30))
def test_random_command_sequences_keep_every_invariant(
    store_url: str, commands: list[dict[str, Any]]
) -> None:
    ref = f"H-{uuid.uuid4().hex[:12]}"
    with CRM(store_url) as crm:
        crm.register_customer(external_ref=ref)
        for fields in commands:
            before = crm.recorder.max_notification_id()
            try:
                command = msgspec.convert({**fields, "customer": ref}, cmd.AnyCommand)  # type: ignore[arg-type]
                crm.execute(command)
            except (CrmError, msgspec.ValidationError):
                assert crm.recorder.max_notification_id() == before
            _check_invariants(crm.get_customer(ref))
        in_memory = crm.get_customer(ref)
        replayed: Customer | None = None
        for event in crm.history(ref):
            replayed = event.mutate(replayed)
    assert replayed == in_memory
    with CRM(store_url) as fresh:
        assert fresh.get_customer(ref) == in_memory
