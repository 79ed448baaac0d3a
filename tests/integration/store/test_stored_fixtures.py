"""History stays readable: rows stored by earlier code decode, verify and answer the same forever.

``tests/fixtures/stored/v1_every_event.json`` holds what the code before the layout change stored
for every event type of then, ``v2_opportunities.json`` what later code stored for the event
types added since (sales opportunities), ``v3_goals.json`` the plan's goal events,
``v3_merges.json`` the merge of a customer registered twice (``CustomersMerged`` on both streams),
each with the master key its keys, payload hashes and
snapshot were made with (see the README there). Loaded into a fresh store row for row, the events must
decode to what they decoded to then, their chains and digest must verify, the customers must
read the same, and re-sending the commands that wrote them must be recognised as done (the
idempotency hash of a command never changes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from crm_es import CRM
from crm_es.app.views import customer_view
from crm_es.audit.history import event_record
from crm_es.audit.verify import verify
from crm_es.domain.commands import decode_command
from crm_es.domain.plan import PLAN_ID
from crm_es.store.codec import GENESIS, stored_hash
from crm_es.store.keys import KEY_TABLE
from crm_es.store.recorders import CommandRecord
from crm_es.store.settings import SETTINGS_TABLE
from crm_es.store.store import OLDER_SECRETS_SEALED
from crm_es.store.url import parse_store_url

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stored"
NAMES = ("v1_every_event", "v2_opportunities", "v3_goals", "v3_merges")


def load_fixture(name: str = "v1_every_event") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def use_master_key(store_url: str, key: str) -> None:
    """Open the store with the master key the fixture was written with (where its URL, or the
    SQLite file, says the key is), so its wrapped keys, keyed hashes and sealed snapshots hold."""
    config = parse_store_url(store_url)
    path = config.master_key_file or config.env["SQLITE_DBNAME"] + ".key"
    Path(path).write_text(key + "\n")


def rows(items: list[dict[str, Any]]) -> list[StoredEvent]:
    return [
        StoredEvent(
            UUID(r["originator_id"]), r["originator_version"], r["topic"], bytes.fromhex(r["state"])
        )
        for r in items
    ]


def restore(crm: CRM, data: dict[str, Any]) -> None:
    """The fixture's rows, keys (in clear, as that version kept them) and records (with plain
    payload hashes), written as they were stored; the store then reads as one that version
    left, never opened by this one."""
    with crm.store.db.transaction() as tx:
        tx.executemany(
            f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at, erased_at) "
            "VALUES (?, ?, ?, ?)",
            [(k["customer_id"], k["key_material"], "2026-03-01T00:00:00+00:00",
              "2026-03-05T00:00:00+00:00" if k["erased"] else None)
             for k in data["customer_keys"]],
        )  # fmt: skip
        tx.execute(f"DELETE FROM {SETTINGS_TABLE} WHERE name = ?", (OLDER_SECRETS_SEALED,))
    records = [
        CommandRecord(r["command_id"], bytes.fromhex(r["payload_hash"]), UUID(r["customer_id"]),
                      r["version"], r["events"])
        for r in data["command_records"]
    ]  # fmt: skip
    snapshots = [(s.originator_id, s.originator_version, s.topic, s.state)
                 for s in rows(data["snapshots"])]  # fmt: skip
    crm.recorder.insert_events(rows(data["events"]), commands=records, snapshots=snapshots)


@pytest.fixture(params=NAMES)
def restored(store_url: str, request: pytest.FixtureRequest) -> Any:
    data = load_fixture(request.param)
    if "master_key" in data:
        use_master_key(store_url, data["master_key"])
    with CRM(store_url) as crm:
        restore(crm, data)
    with CRM(store_url) as crm:  # opened by this version for the first time
        yield crm, data


def test_the_fixtures_hold_every_event_type() -> None:
    from crm_es.domain.events import EVENT_TYPES

    topics = {e["topic"] for name in NAMES for e in load_fixture(name)["events"]}
    assert topics == set(EVENT_TYPES)


def test_stored_events_decode_to_what_they_decoded_to_when_written(restored: Any) -> None:
    crm, data = restored
    decoded = [
        json.loads(msgspec.json.encode(event_record(e)))
        for cid in sorted({e["originator_id"] for e in data["events"]})
        for e in (crm.plan_history() if cid == str(PLAN_ID) else crm.history(cid))
    ]
    assert decoded == data["decoded_events"]


def test_stored_chains_still_verify(restored: Any) -> None:
    crm, data = restored
    report = verify(crm)
    assert report.ok, report.problems
    assert report.events == len(data["events"])


# The fixture's histories run in March 2026; its views were written while those orders were in
# the tier window and no lot had expired. Views have gained keys since (never lost or changed one).
VIEWED_AT = datetime(2026, 6, 30, tzinfo=UTC)


def test_customers_read_the_same_as_when_written(restored: Any) -> None:
    crm, data = restored
    for ref, view in data["customer_views"].items():
        now = json.loads(msgspec.json.encode(customer_view(crm.get_customer(ref), VIEWED_AT, UTC)))
        points = {key: now["points"][key] for key in view["points"]}
        points["lots"] = [  # lots have gained keys too
            {key: lot[key] for key in then}
            for lot, then in zip(points["lots"], view["points"]["lots"], strict=True)
        ]
        assert {key: now[key] for key in view} | {"points": points} == view


def test_events_without_personal_data_encode_to_the_same_bytes(restored: Any) -> None:
    crm, data = restored
    previous: dict[str, bytes] = {}
    for row in data["events"]:
        state = bytes.fromhex(row["state"])
        prev = previous.get(row["originator_id"], GENESIS)
        previous[row["originator_id"]] = stored_hash(state)
        event = crm.store.codec.decode_state(row["topic"], state)
        if getattr(type(event), "PII_FIELDS", ()):
            continue  # encrypted with a fresh nonce each time
        assert crm.store.codec.encode_row(event, prev)[3] == state, row["topic"]


def test_re_sent_commands_are_recognised_as_done(restored: Any) -> None:
    """The idempotency records hold each command's payload hash as first computed: a command
    re-sent with its id appends nothing and answers its first result."""
    crm, data = restored
    head = crm.store.head()
    for line, first in zip(data["commands"], data["results"], strict=True):
        result = crm.execute(decode_command(json.dumps(line, ensure_ascii=False)))
        assert result.duplicate
        assert (str(result.customer_id), result.version, result.events) == (
            first["customer_id"], first["version"], first["events"]
        )  # fmt: skip
    assert crm.store.head() == head
