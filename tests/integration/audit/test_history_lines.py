"""History lines are encoded straight from the event (keys renamed in the bytes); they must be
byte for byte what encoding ``event_record`` (plus the summary) gives, for every event type."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from crm_es import CRM, CrmError
from crm_es.audit.history import event_record, history_line, summarize
from crm_es.demo.generator import generate_commands
from crm_es.domain import events as ev
from crm_es.domain.events import EVENT_TYPES
from crm_es.domain.plan import PLAN_ID

_JSON = msgspec.json.Encoder()


def test_history_lines_equal_the_encoded_records_for_every_event_type(sqlite_url: str) -> None:
    end = datetime(2026, 6, 1, tzinfo=UTC)
    with CRM(sqlite_url) as crm:
        outcomes = list(crm.execute_many(generate_commands(customers=60, seed=3, end=end)))
        assert sum(not isinstance(o, CrmError) for o in outcomes) > 1000
        # Values that must survive the renaming untouched: envelope key names inside user
        # text, quotes, Chinese, an erased customer, profile updates with fields left unset.
        crm.register_customer(external_ref="Q-1", name='王芳 "timestamp": {"originator_id":')
        crm.log_contact(
            customer="Q-1",
            channel="phone",
            direction="inbound",
            summary='asked about "originator_version": 7 and "timestamp":',
            reason='"timestamp":',
        )
        crm.update_profile(customer="Q-1", region="华东")
        crm.erase_personal_data(customer="Q-1", requested_by="dpo")
        customers = {o.customer_id for o in outcomes if not isinstance(o, CrmError)}
        customers.add(crm.get_customer("Q-1").id)
        events = [e for c in customers if c != PLAN_ID for e in crm.history(c)]
        events += crm.plan_history()  # the goals of the demo's plan
    assert {type(e) for e in events} == set(EVENT_TYPES.values())
    for event in events:
        record = event_record(event)
        assert history_line(event) == _JSON.encode(record)
        summary = summarize(event)
        assert history_line(event, summary) == _JSON.encode({**record, "summary": summary})
    lines = [msgspec.json.decode(history_line(e, summarize(e))) for e in events]
    assert all(line["type"] == ev.event_type_name(e) for line, e in zip(lines, events, strict=True))
