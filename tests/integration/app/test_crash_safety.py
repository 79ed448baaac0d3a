"""``kill -9`` in the middle of an import and of a rebuild: nothing lost, nothing doubled.

Each test starts the real command line as a subprocess, waits (polling the store, never a fixed
sleep) until it has done part of its work, SIGKILLs it, and checks what a restart finds: every
committed batch complete, nothing half-written, and a re-run that finishes the job exactly once.
Both on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from crm_es import CRM
from crm_es.domain import commands as cmd
from crm_es.domain.events import CustomerEvent, CustomerRegistered, PurchaseRecorded
from crm_es.domain.ids import customer_id_for_ref
from crm_es.projections import ProjectionEngine, read_models
from crm_es.projections.engine import STATE_TABLE
from tests.helpers.projections import dump, generation

CLI = [sys.executable, "-m", "crm_es.cli"]


def start(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "--db", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def kill_when(process: subprocess.Popen[bytes], ready: Any, timeout: float = 60) -> Any:
    """Poll ``ready()`` until it returns something truthy, then SIGKILL the process."""
    deadline = time.monotonic() + timeout
    while not (seen := ready()):
        assert process.poll() is None, "the process finished before it could be killed"
        assert time.monotonic() < deadline, "the process never got going"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return seen


def writers_of(parent: int, within: float) -> list[int]:
    """Pids of bulk writer processes started by ``parent`` still alive after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        alive = []
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"bulk_writer.py") for a in argv) and str(parent).encode() in argv:
                alive.append(int(entry.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def all_events(crm: CRM) -> list[CustomerEvent]:
    notifications = crm.recorder.select_notifications(start=1, limit=10**7)
    return [crm.mapper.to_domain_event(n) for n in notifications]  # type: ignore[misc]


# --- import ------------------------------------------------------------------------------------


def write_purchases(path: Path, rows: int, customers: int) -> list[dict[str, str]]:
    """A purchases CSV: most rows without order_id (identified by content), some with one, and
    some exact duplicates (two identical purchases, both real)."""
    start = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    records: list[dict[str, str]] = []
    for i in range(rows):
        if i % 50 == 49:  # an identical second purchase of the row before
            records.append(dict(records[-1]))
            continue
        records.append(
            {
                "customer_ref": f"CSV-{i % customers}",
                "occurred_at": (start + timedelta(minutes=7 * i)).isoformat(),
                "amount": f"{(i * 37) % 5000}.{i % 100:02d}",
                "currency": "CNY",
                "order_id": f"ORD-{i}" if i % 10 == 0 else "",
                "channel": "online" if i % 3 else "store",
            }
        )
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return records


def test_an_import_killed_mid_file_and_run_again_stores_each_row_exactly_once(
    store_url: str, tmp_path: Path
) -> None:
    rows, customers = 4000, 200
    csv_file = tmp_path / "purchases.csv"
    records = write_purchases(csv_file, rows, customers)
    with CRM(store_url) as crm:  # create the schema first, so polling never races the DDL
        assert crm.recorder.max_notification_id() is None
        importer = start(
            store_url, "import", "purchases", str(csv_file), "--register-missing", "--batch", "1000"
        )

        def two_batches_in() -> int | None:  # batches of 500 rows, with their registrations
            head = crm.recorder.max_notification_id() or 0
            return head if head >= 1500 else None

        head_at_kill = kill_when(importer, two_batches_in)
        assert writers_of(importer.pid, within=5) == []  # its bulk writer is gone too
        purchases_before = sum(isinstance(e, PurchaseRecorded) for e in all_events(crm))
    assert 0 < purchases_before < rows

    rerun = subprocess.run(
        [*CLI, "--db", store_url, "import", "purchases", str(csv_file), "--register-missing"],
        capture_output=True,
        env=os.environ.copy(),
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["rows"] == rows and summary["rejected"] == 0
    assert summary["unchanged"] == purchases_before  # exactly the rows the killed run committed
    assert summary["stored"] == rows - purchases_before

    with CRM(store_url) as crm:
        events = all_events(crm)
    purchases = [e for e in events if isinstance(e, PurchaseRecorded)]
    registrations = Counter(e.originator_id for e in events if isinstance(e, CustomerRegistered))
    assert len(purchases) == rows  # one purchase per CSV row: nothing lost, nothing doubled
    assert len({(e.originator_id, e.order_id) for e in purchases}) == rows
    assert set(registrations.values()) == {1}
    assert len(registrations) == len({r["customer_ref"] for r in records})
    expected: Counter[Any] = Counter()
    for record in records:
        whole, cents = record["amount"].split(".")
        expected[customer_id_for_ref(record["customer_ref"])] += int(whole) * 100 + int(cents)
    paid: Counter[Any] = Counter()
    for e in purchases:
        paid[e.originator_id] += e.amount
    assert paid == expected
    print(
        f"import: killed at notification {head_at_kill} with {purchases_before} of {rows} "
        f"purchases stored; the re-run stored {summary['stored']}"
    )


# --- rebuild -----------------------------------------------------------------------------------


def fill(crm: CRM, customers: int = 60, purchases: int = 25) -> None:
    """A few thousand events, quickly (one transaction per chunk)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    commands: list[cmd.Command] = []
    for c in range(customers):
        ref = f"C-{c}"
        commands.append(cmd.RegisterCustomer(external_ref=ref, occurred_at=start))
        for p in range(purchases):
            when = start + timedelta(days=13 * p + c)
            commands.append(
                cmd.RecordPurchase(
                    customer=ref,
                    order_id=f"O-{p}",
                    amount=Decimal(f"{10 + p * c % 300}.50"),
                    currency="CNY",
                    occurred_at=when,
                )
            )
            commands.append(cmd.GrantPoints(customer=ref, points=1 + p, occurred_at=when))
    outcomes = list(crm.execute_many(commands))
    assert not [o for o in outcomes if isinstance(o, Exception)]


def generation_tables(engine: ProjectionEngine, name: str) -> set[str]:
    """Physical read-model tables of ``name`` in the store, whatever their generation."""
    with engine.db.reading() as tx:
        if engine.db.postgres:
            rows = tx.query(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        else:
            rows = tx.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows if str(r[0]).startswith(f"rm_{name}_")}


def partial_generation(engine: ProjectionEngine, name: str) -> tuple[int, int] | None:
    """(generation, position) of an inactive generation that has applied some events."""
    with engine.db.reading() as tx:
        rows = tx.query(
            f"SELECT generation, position FROM {STATE_TABLE} "
            "WHERE name = ? AND active = 0 AND position > 0",
            (name,),
        )
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


def test_a_rebuild_killed_midway_leaves_the_old_generation_serving_and_a_rerun_completes(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        fill(crm)
        head = crm.recorder.max_notification_id() or 0
        assert head > 3000
        engine = ProjectionEngine(crm, read_models())
        try:
            engine.catch_up("customers")
            live = dump(engine, "customers")
            old_tables = generation_tables(engine, "customers")
            assert {t.rsplit("_", 1)[1] for t in old_tables} == {"g1"}

            rebuild = start(store_url, "projections", "rebuild", "customers", "--batch-size", "3")

            def a_quarter_built() -> tuple[int, int] | None:
                partial = partial_generation(engine, "customers")
                return partial if partial and partial[1] >= head // 4 else None

            new_generation, position = kill_when(rebuild, a_quarter_built)
            assert new_generation == 2 and 0 < position < head
            # Reports still read the old, complete generation; the partial one is left over.
            assert generation(engine, "customers") == 1
            assert dump(engine, "customers") == live
            status = next(s for s in engine.status() if s.name == "customers")
            assert (status.position, status.lag) == (head, 0)
            leftovers = generation_tables(engine, "customers") - old_tables
            assert leftovers and all(t.endswith("_g2") for t in leftovers)

            # New commands keep flowing into the old generation while it serves.
            crm.grant_points(customer="C-0", points=5)
            assert engine.catch_up("customers") == head + 1
            live = dump(engine, "customers")

            assert engine.rebuild("customers") == head + 1  # a later rebuild completes
            assert generation(engine, "customers") == 3
            assert dump(engine, "customers") == live  # and equals the live catch-up
            tables = generation_tables(engine, "customers")
            assert tables and all(t.endswith("_g3") for t in tables)  # g1 and partial g2 gone
            with engine.db.reading() as tx:
                rows = tx.query(
                    f"SELECT generation FROM {STATE_TABLE} WHERE name = ?", ("customers",)
                )
            assert [int(r[0]) for r in rows] == [3]
            print(
                f"rebuild: killed at position {position} of {head}; "
                f"left {len(leftovers)} partial tables, dropped by the next rebuild"
            )
        finally:
            engine.close()
