"""After any random command sequence, the live read models equal a fresh rebuild."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.domain import commands as cmd
from crm_es.projections import ProjectionEngine, read_models
from tests.helpers.projections import dump
from tests.helpers.strategies import command_strategy

EXTRA = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("answer_survey"),
            "survey_id": st.sampled_from(["A", "B"]),
            "metric": st.just("gap"),
            "expectation": st.integers(1, 7),
            "performance": st.integers(1, 7),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("assign_owner"), "owner": st.sampled_from(["staff:a", "staff:b"])}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("update_profile"),
            "region": st.sampled_from(["华东", "华南"]),
            "birthday": st.sampled_from(["1990-02-28", "1985-12-31"]),
        }
    ),
    st.fixed_dictionaries({"type": st.just("erase_personal_data"), "requested_by": st.just("dpo")}),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.one_of(command_strategy(), EXTRA), st.booleans()), min_size=1, max_size=25
    )
)
def test_live_read_models_equal_a_fresh_rebuild(
    store_url: str, steps: list[tuple[dict[str, Any], bool]]
) -> None:
    ref = f"P-{uuid.uuid4().hex[:12]}"
    with CRM(store_url) as crm:
        live = ProjectionEngine(crm, read_models(), batch_size=4)
        try:
            crm.register_customer(external_ref=ref, birthday="1990-06-05", owner="staff:a")
            for fields, catch_up_now in steps:
                # rejected commands (by the schema or a rule) store nothing
                with contextlib.suppress(CrmError, msgspec.ValidationError):
                    crm.execute(msgspec.convert({**fields, "customer": ref}, cmd.AnyCommand))  # type: ignore[arg-type]
                if catch_up_now:  # the live models follow at random points
                    for name in live.models:
                        live.catch_up(name)
            live.catch_up_all()
            maintained = {name: dump(live, name) for name in live.models}
            for name in live.models:
                live.rebuild(name)
            assert {name: dump(live, name) for name in live.models} == maintained
        finally:
            live.close()
