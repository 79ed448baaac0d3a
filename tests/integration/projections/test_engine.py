"""The projection engine on real stores: exactly once, rebuild, follow, crash and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crm_es import CRM
from crm_es.projections import ProjectionEngine, read_models
from crm_es.projections.engine import StaleReadModel
from tests.helpers.projections import dump, generation, populate

NAMES = tuple(model.name for model in read_models())  # every registered read model


def test_catch_up_applies_every_event_once_and_reports_no_lag(crm: CRM) -> None:
    populate(crm)
    engine = ProjectionEngine(crm, read_models(), batch_size=7)
    try:
        head = engine.head()
        for name in NAMES:
            assert engine.catch_up(name) == head
            assert engine.catch_up(name) == head  # nothing new: nothing applied twice
        assert all(s.lag == 0 and s.position == head for s in engine.status())
        rows = dump(engine, "customers")
        assert len(rows["profile"]) == 6 and len(rows["purchases"]) == 24
        assert len(rows["refunds"]) == 2 and len(rows["tag_facts"]) == 3
        assert len(dump(engine, "feedback")["survey_answers"]) == 24
    finally:
        engine.close()


def test_two_workers_on_one_read_model_never_apply_an_event_twice(crm: CRM) -> None:
    populate(crm, customers=10)
    engines = [ProjectionEngine(crm, read_models(), batch_size=3) for _ in range(2)]
    errors: list[BaseException] = []

    def work(engine: ProjectionEngine) -> None:
        try:
            for name in NAMES:
                engine.catch_up(name)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        reference = ProjectionEngine(crm, read_models())
        for name in NAMES:
            reference.rebuild(name)
        assert (
            dump(engines[0], "customers")["purchases"] == dump(reference, "customers")["purchases"]
        )
        assert len(dump(engines[0], "customers")["purchases"]) == 40
        reference.close()
    finally:
        for e in engines:
            e.close()


def test_rebuild_matches_live_and_reads_keep_answering_from_the_old_tables(crm: CRM) -> None:
    populate(crm)
    engine = ProjectionEngine(crm, read_models(), batch_size=5)
    try:
        for name in NAMES:
            engine.catch_up(name)
        live = {name: dump(engine, name) for name in NAMES}
        seen_during_rebuild: list[tuple[int, int]] = []

        def during(position: int, head: int) -> None:
            # Mid-rebuild a reader still sees the complete old generation.
            rows = dump(engine, "customers")
            seen_during_rebuild.append((generation(engine, "customers"), len(rows["purchases"])))

        engine.rebuild("customers", during)
        for name in ("feedback", "care"):
            engine.rebuild(name)
        assert seen_during_rebuild and all(s == (1, 24) for s in seen_during_rebuild)
        assert generation(engine, "customers") == 2
        assert {name: dump(engine, name) for name in NAMES} == live
    finally:
        engine.close()


def test_a_read_model_built_by_older_code_asks_for_a_rebuild(crm: CRM) -> None:
    populate(crm, customers=2)
    engine = ProjectionEngine(crm, read_models())
    try:
        engine.catch_up("customers")
        type(engine.models["customers"]).schema_version += 1
        try:
            assert next(s for s in engine.status() if s.name == "customers").rebuild_needed
            with pytest.raises(StaleReadModel, match="projections rebuild customers"):
                engine.catch_up("customers")
            engine.rebuild("customers")
            assert engine.catch_up("customers") == engine.head()
        finally:
            type(engine.models["customers"]).schema_version -= 1
    finally:
        engine.close()


def test_a_catch_up_killed_mid_batch_resumes_with_nothing_lost_or_doubled(
    store_url: str, tmp_path: Path
) -> None:
    with CRM(store_url) as crm:
        populate(crm, customers=150, rounds=8)
        head = crm.recorder.max_notification_id() or 0
        engine = ProjectionEngine(crm, read_models())
        engine.close()
    env = {**os.environ, "CRM_ES_DB": store_url}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_es.cli",
            "projections",
            "catch-up",
            "customers",
            "--batch-size",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with CRM(store_url) as crm:
        engine = ProjectionEngine(crm, read_models())
        try:
            deadline = time.monotonic() + 60
            while (
                position := next(s.position for s in engine.status() if s.name == "customers")
            ) < head // 10:
                assert worker.poll() is None, "worker finished before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.005)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert 0 < position < head
            assert engine.catch_up("customers") == head
            resumed = dump(engine, "customers")
            engine.rebuild("customers")
            assert resumed == dump(engine, "customers")
            assert len(resumed["purchases"]) == 1200
        finally:
            engine.close()


def test_a_rebuild_leaves_the_sqlite_connection_settings_as_it_found_them(
    sqlite_url: str,
) -> None:
    """A rebuild drops old fact tables without SQLite's secure delete and sorts indexes with
    helper threads; the connection goes back to its own settings afterwards (later deletes,
    such as an erased customer's birthday, must still be overwritten)."""
    crm = CRM(sqlite_url)
    populate(crm, customers=3)
    engine = ProjectionEngine(crm, read_models())
    try:
        with engine.db.reading() as tx:
            before = [tx.query(f"PRAGMA {p}") for p in ("secure_delete", "threads")]
        engine.rebuild_many(list(NAMES))
        engine.rebuild_many(list(NAMES))  # drops a generation
        with engine.db.reading() as tx:
            after = [tx.query(f"PRAGMA {p}") for p in ("secure_delete", "threads")]
        assert after == before
    finally:
        engine.close()
        crm.close()
