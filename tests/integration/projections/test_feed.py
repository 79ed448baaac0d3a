"""Projections decode slim views of events; every handler must see the same thing as from the
full domain event, and the batched row keys must equal the per-event formatting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher

from crm_es import CRM, CrmError
from crm_es.demo.generator import generate_commands
from crm_es.domain import events as ev
from crm_es.domain.events import EVENT_TYPES
from crm_es.domain.times import business_day, iso, iso_many
from crm_es.projections import ProjectionEngine, read_models
from crm_es.projections.feed import RowKeys
from crm_es.projections.slim_events import KEPT_PERSONAL, slim_decoder
from crm_es.store.codec import GENESIS, HASH_SIZE, HEADER_SIZE, CustomerEventMapper
from crm_es.store.secrets import create_master_key
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres
from tests.helpers.projections import dump


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:  # fmt: skip
    """A demo population (every event type) on each store, shared by this module's tests."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('decoding') / 'crm.db'}"
    else:
        require_postgres()
        url, schema = new_postgres_url()
    end = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        with CRM(url) as crm:
            outcomes = list(crm.execute_many(generate_commands(customers=60, seed=3, end=end)))
            assert sum(not isinstance(o, CrmError) for o in outcomes) > 1000
            for i in range(3):  # an erased customer, and a birthday changed then cleared
                crm.register_customer(external_ref=f"X-{i}", birthday="1990-06-05")
            crm.update_profile(customer="X-1", birthday="1985-12-31")
            crm.update_profile(customer="X-2", birthday=None)
            crm.erase_personal_data(customer="X-0", requested_by="dpo")
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


def test_every_handler_gets_the_same_statements_from_the_slim_view_as_from_the_full_event(
    demo_store: str,
) -> None:
    with CRM(demo_store) as crm:
        engine = ProjectionEngine(crm, read_models())
        try:
            rows = engine.feed.read(0, None, 1_000_000)
            everything = {topic: topic for topic in EVENT_TYPES}
            _, decoded, keys = engine.feed.decode(rows, everything)
            assert len(decoded) == len(rows)
            full_reader = crm.store.reader(personal_fields=KEPT_PERSONAL)
            seen: set[str] = set()
            for (_, topic, state), slim, key in zip(rows, decoded, keys, strict=True):
                full = full_reader.decode_state(topic, bytes(state))
                day = business_day(full.occurred_at, crm.store.timezone).isoformat()
                assert key == RowKeys(str(full.originator_id), iso(full.occurred_at),
                                      iso(full.recorded_at), day)  # fmt: skip
                assert type(slim) is not type(full)  # the fast path was taken
                for model in engine.models.values():  # bound: contact_index hashes with a key
                    handler = model.handlers().get(type(full))
                    if handler is not None:
                        seen.add(topic)
                        assert handler(slim, key) == handler(full, key), (model.name, topic)
            handled = {c.TOPIC for m in read_models() for c in m.handlers()}
            assert seen == handled  # the population exercised every handler
        finally:
            engine.close()


def test_slim_decoding_skips_unread_and_personal_fields_but_keeps_the_ones_read_models_hash_or_cut(
) -> None:  # fmt: skip
    registered = ev.CustomerRegistered(
        originator_id=uuid.uuid4(), originator_version=1,
        recorded_at=datetime.now(UTC), occurred_at=datetime.now(UTC), actor="user:a",
        external_ref="C-1", name="王芳", email="wf@example.com", birthday="1990-06-05",
    )  # fmt: skip
    stored = CustomerEventMapper().encode(registered, GENESIS).state  # no store needed
    slim = slim_decoder(ev.CustomerRegistered).decode(stored[HEADER_SIZE:-HASH_SIZE])
    assert slim.birthday == "1990-06-05" and slim.external_ref == "C-1"
    assert slim.email == "wf@example.com"  # the contact index keeps its keyed hash
    assert not hasattr(slim, "name") and not hasattr(slim, "actor")


def test_times_are_formatted_in_bulk_exactly_as_one_by_one() -> None:
    base = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    moments = [
        base,
        base.replace(microsecond=1),
        base.replace(microsecond=999_999),
        base.astimezone(timezone(timedelta(hours=8))),
        base.astimezone(timezone(timedelta(hours=-5, minutes=-30))).replace(microsecond=120),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    assert iso_many(moments) == [iso(m) for m in moments]


def test_a_rebuild_of_a_store_with_every_event_type_equals_the_live_catch_up(
    demo_store: str,
) -> None:
    with CRM(demo_store) as crm:
        # Batches long enough for COPY (PostgreSQL) and a few of them.
        engine = ProjectionEngine(crm, read_models(), batch_size=700)
        try:
            names = list(engine.models)
            engine.catch_up_many(names)
            live = {name: dump(engine, name) for name in names}
            engine.rebuild_many(names)
            assert {name: dump(engine, name) for name in names} == live
            assert all(live[name] for name in names)
        finally:
            engine.close()


def _without_recorded(engine: ProjectionEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every read model's rows, less the recorded times (which differ between two stores)."""
    out = {}
    with engine.db.reading() as tx:
        for name, model in engine.models.items():
            for table, physical in engine.active_tables(tx, name).items():
                parts = [p.split()[0] for p in model.tables[table].split(",") if p.strip()]
                columns = [c for c in parts if c != "PRIMARY" and "(" not in c and ")" not in c]
                kept = ", ".join(c for c in columns if not c.endswith("recorded_at"))
                rows = tx.query(f"SELECT {kept} FROM {physical}")
                out[f"{name}.{table}"] = sorted(rows, key=repr)
    return out


def test_compressed_and_enciphered_events_project_through_the_mapper_to_the_same_rows(
    tmp_path: Path,
) -> None:
    """Bodies the slim path cannot read (enciphered, compressed) fall back to the full event;
    the tables come out the same as from plain bodies."""
    end = datetime(2026, 6, 1, tzinfo=UTC)
    commands = list(generate_commands(customers=25, seed=5, end=end))
    env = {
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(16),
    }
    tables = []
    key = tmp_path / "master.key"  # one key for both: the contact index's hashes are keyed by it
    create_master_key(key)
    for store, extra in (("plain", {}), ("sealed", env)):
        with CRM(f"sqlite:///{tmp_path / store}.db?master_key_file={key}", env=extra) as crm:
            list(crm.execute_many(commands))
            engine = ProjectionEngine(crm, read_models(), batch_size=300)
            try:
                flags = {bytes(r[2])[1] for r in engine.feed.read(0, None, 10**6)}
                assert (0 in flags) != bool(extra)  # sealed: every body enciphered
                engine.rebuild_many(list(engine.models))
                tables.append(_without_recorded(engine))
            finally:
                engine.close()
    assert tables[0] == tables[1]
    assert sum(len(rows) for rows in tables[0].values()) > 300
