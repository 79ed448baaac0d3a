"""The bulk path decides chunk k+1 while chunk k is being saved (by the bulk writer process).
Chunk k+1 is built on states holding chunk k's unsaved events, so every way chunk k can fail
must leave the store and the cache exactly as if the commands had run one by one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from crm_es import CRM
from crm_es.app.bulk.writer import BulkWriterProcess, writer_application_name
from crm_es.app.results import CommandResult
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.values import Category
from crm_es.store.database import Database
from crm_es.store.recorders import COMMANDS_TABLE, COPY_THRESHOLD

REGISTERED = datetime(2024, 1, 1, tzinfo=UTC)
# Customers are registered signed, so a first purchase records no category move and the versions
# below count purchases alone (the move itself: tests/integration/store/test_bulk_save.py).


def purchase(ref: str, order: str, amount: str = "10.00") -> cmd.RecordPurchase:
    return cmd.RecordPurchase(
        customer=ref,
        order_id=order,
        amount=Decimal(amount),
        currency="CNY",
        occurred_at=REGISTERED,
        command_id=f"pipeline-{ref}-{order}",
    )


def orders_and_version(crm: CRM, ref: str) -> tuple[set[str], int]:
    customer = crm.get_customer(ref)
    return set(customer.orders), customer.version


def test_chunks_saved_behind_the_next_one_store_every_event_once_in_order(store_url: str) -> None:
    with CRM(store_url) as crm:
        for ref in ("A", "B"):
            crm.register_customer(external_ref=ref, occurred_at=REGISTERED, category="signed")
        commands = [purchase("A" if i % 3 else "B", f"O-{i}") for i in range(40)]
        outcomes = list(crm.execute_many(commands, chunk_size=6, validated=True))
        assert all(isinstance(o, CommandResult) and o.events == 1 for o in outcomes)
        # Each customer's results count up by one: chunks never overlapped in the stream.
        for ref in ("A", "B"):
            versions = [
                o.version
                for c, o in zip(commands, outcomes, strict=True)
                if c.customer == ref and isinstance(o, CommandResult)
            ]
            assert versions == list(range(2, 2 + len(versions)))
        assert orders_and_version(crm, "A") == ({f"O-{i}" for i in range(40) if i % 3}, 27)
        report = verify(crm)
        assert report.ok and report.events == 42
        # Run again: every command is a duplicate of a stored one, nothing is added.
        again = list(crm.execute_many(commands, chunk_size=6, validated=True))
        assert all(isinstance(o, CommandResult) and o.duplicate for o in again)
    with CRM(store_url) as fresh:  # what a new process reads back
        assert orders_and_version(fresh, "A") == ({f"O-{i}" for i in range(40) if i % 3}, 27)


def test_a_chunk_that_collides_is_redone_and_the_chunk_decided_on_it_decided_again(
    store_url: str,
) -> None:
    with CRM(store_url) as bulk, CRM(store_url) as other:
        bulk.register_customer(
            external_ref="X", occurred_at=REGISTERED, category="signed"
        )  # cached at version 1
        # Another process records O-1: the bulk side's cached state is stale, so its first
        # chunk (O-0..O-2) collides, and redone it stores one event fewer than it decided.
        # The second chunk, decided on the first one's states, must be decided again: saved
        # as decided it would not even collide, it would chain to an event never stored.
        other.record_purchase(customer="X", order_id="O-1", amount="1.00", currency="CNY")
        commands = [purchase("X", f"O-{i}") for i in range(10)]
        outcomes = list(bulk.execute_many(commands, chunk_size=3, validated=True))
        assert [
            o.version if isinstance(o, CommandResult) else type(o).__name__ for o in outcomes
        ] == [3, "DuplicateId", *range(4, 12)]
        assert orders_and_version(bulk, "X") == ({f"O-{i}" for i in range(10)}, 11)
        report = verify(bulk)
        assert report.ok and report.events == 11
    with CRM(store_url) as fresh:
        assert orders_and_version(fresh, "X") == ({f"O-{i}" for i in range(10)}, 11)


def test_a_caller_that_writes_between_outcomes_never_sees_unsaved_events(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="Y", occurred_at=REGISTERED, category="signed")
        commands = [purchase("Y", f"O-{i}") for i in range(12)]
        outcomes = crm.execute_many(commands, chunk_size=4, validated=True)
        first = next(outcomes)
        assert isinstance(first, CommandResult) and first.version == 2
        # The next chunk holds Y's state with events not yet saved; a command of our own
        # thread must decide on what is stored (and the bulk run must still end right).
        crm.record_purchase(customer="Y", order_id="BETWEEN", amount="1.00", currency="CNY")
        rest = list(outcomes)
        assert all(isinstance(o, CommandResult) for o in rest)
        assert orders_and_version(crm, "Y") == ({"BETWEEN"} | {f"O-{i}" for i in range(12)}, 14)
        report = verify(crm)
        assert report.ok and report.events == 14


def test_a_caller_that_stops_early_leaves_no_unsaved_state_behind(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="Z", occurred_at=REGISTERED, category="signed")
        outcomes = crm.execute_many(
            (purchase("Z", f"O-{i}") for i in range(30)), chunk_size=5, validated=True
        )
        taken = [next(outcomes) for _ in range(7)]  # into the second chunk
        outcomes.close()
        assert [o.version for o in taken if isinstance(o, CommandResult)] == list(range(2, 9))
        stored, version = orders_and_version(crm, "Z")
        # Whatever was saved is whole chunks, and the cache agrees with the store.
        assert len(stored) in (5, 10, 15) and version == len(stored) + 1
        after = crm.record_purchase(customer="Z", order_id="AFTER", amount="1.00", currency="CNY")
        assert after.version == version + 1
        report = verify(crm)
        assert report.ok and report.events == version + 1


def test_an_import_streams_its_rows_through_the_pipeline(store_url: str) -> None:
    def commands() -> Iterator[cmd.Command]:
        # A potential customer: registered in the stream, its first purchase records the move
        # to signed on this path too (one event more than the purchases).
        yield cmd.RegisterCustomer(external_ref="S", occurred_at=REGISTERED)
        for i in range(25):
            yield purchase("S", f"O-{i}")
            if i == 12:
                # The same order again under another command id: refused on the order id,
                # though the first one's chunk may still be saving.
                yield msgspec.structs.replace(purchase("S", "O-3"), command_id="again")

    with CRM(store_url) as crm:
        outcomes = list(crm.execute_many(commands(), chunk_size=4, validated=True))
        errors = [type(o).__name__ for o in outcomes if isinstance(o, Exception)]
        assert errors == ["DuplicateId"]
        assert orders_and_version(crm, "S") == ({f"O-{i}" for i in range(25)}, 27)
        assert crm.get_customer("S").category is Category.SIGNED


# --- chunks of COPY_THRESHOLD events or more go through the bulk writer process ------------------

BIG = COPY_THRESHOLD + 20


def small(ref: str, order: str) -> cmd.RecordPurchase:
    """A purchase too small to move the customer's tier (so one event per command)."""
    return purchase(ref, order, "0.01")


def writer_children() -> list[int]:
    """Pids of this process's children (the SQLite writer, while a bulk run is on)."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def test_large_chunks_go_through_the_writer_process_and_collisions_are_redone(
    store_url: str,
) -> None:
    with CRM(store_url) as bulk, CRM(store_url) as other:
        bulk.register_customer(external_ref="W", occurred_at=REGISTERED, category="signed")
        other.record_purchase(customer="W", order_id="O-1", amount="1.00", currency="CNY")
        commands = [small("W", f"O-{i}") for i in range(3 * BIG)]
        outcomes = bulk.execute_many(commands, chunk_size=BIG, validated=True)
        first = next(outcomes)
        assert writer_children(), "a chunk this large is stored by the writer process"
        rest = list(outcomes)
        assert not writer_children(), "the writer process ends with the run"
        results = [first, *rest]
        errors = [type(o).__name__ for o in results if isinstance(o, Exception)]
        assert errors == ["DuplicateId"]  # O-1: the stale first chunk collided, then redone
        assert orders_and_version(bulk, "W") == ({f"O-{i}" for i in range(3 * BIG)}, 3 * BIG + 1)
        report = verify(bulk)
        assert report.ok and report.events == 3 * BIG + 1


def test_a_writer_process_that_dies_fails_the_run_and_a_rerun_completes_it(
    store_url: str,
) -> None:
    commands = [small("K", f"O-{i}") for i in range(4 * BIG)]
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="K", occurred_at=REGISTERED, category="signed")
        outcomes = crm.execute_many(commands, chunk_size=BIG, validated=True)
        next(outcomes)  # the first chunk is stored and the second handed to the writer
        for pid in writer_children():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(OperationalError, match="writer process ended"):
            list(outcomes)
        stored, version = orders_and_version(crm, "K")
        assert len(stored) % BIG == 0 and version == len(stored) + 1  # whole chunks only
        again = list(crm.execute_many(commands, chunk_size=BIG, validated=True))
        assert all(isinstance(o, CommandResult) for o in again)
        assert sum(o.duplicate for o in again if isinstance(o, CommandResult)) == len(stored)
        assert orders_and_version(crm, "K")[1] == 4 * BIG + 1
        assert verify(crm).ok


def test_an_in_memory_store_saves_large_chunks_in_its_own_process() -> None:
    with CRM("sqlite:///:memory:") as crm:
        crm.register_customer(external_ref="M", occurred_at=REGISTERED, category="signed")
        outcomes = crm.execute_many(
            [small("M", f"O-{i}") for i in range(2 * BIG)], chunk_size=BIG, validated=True
        )
        next(outcomes)
        assert not writer_children()  # no other process can open an in-memory database
        assert all(isinstance(o, CommandResult) for o in outcomes)
        assert orders_and_version(crm, "M")[1] == 2 * BIG + 1


def test_a_lost_postgres_connection_of_the_writer_is_reconnected_and_its_chunk_stored(
    postgres_url: str,
) -> None:
    commands = [small("L", f"O-{i}") for i in range(5 * BIG)]
    with (
        CRM(postgres_url) as crm,
        psycopg.connect(crm.store.config.conninfo(), autocommit=True) as admin,
    ):
        crm.register_customer(external_ref="L", occurred_at=REGISTERED, category="signed")
        outcomes = crm.execute_many(commands, chunk_size=BIG, validated=True)
        results = [next(outcomes)]
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (writer_application_name(os.getpid()),),  # ours, not another test run's
        ).fetchone()
        assert ended == (1,)  # the writer's session is gone, mid-chunk or between chunks
        results += list(outcomes)
        assert all(isinstance(o, CommandResult) and not o.duplicate for o in results)
        assert orders_and_version(crm, "L") == ({f"O-{i}" for i in range(5 * BIG)}, 5 * BIG + 1)
        report = verify(crm)
        assert report.ok and report.events == 5 * BIG + 1


def test_the_writer_process_dies_with_the_process_that_started_it(sqlite_url: str) -> None:
    """Even when something else still holds its input open (so it would never read the end of
    it): a killed import must not leave a writer that commits the chunk in hand afterwards."""
    db_name = sqlite_url.removeprefix("sqlite:///")
    with CRM(sqlite_url) as crm:  # the schema
        sql = crm.recorder.save_statements  # type: ignore[attr-defined]
    script = (
        "import os, subprocess, sys\n"
        "from crm_es.app.bulk.writer import BulkWriterProcess\n"
        "from crm_es.store.save_rows import SaveStatements\n"
        f"writer = BulkWriterProcess('sqlite', {db_name!r}, 5.0, {sql!r})\n"
        "holder = subprocess.Popen(['sleep', '60'], pass_fds=[writer._child.stdin.fileno()])\n"
        "print(writer._child.pid, holder.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    writer, holder = (int(pid) for pid in parent.stdout.readline().split())
    try:
        assert Path(f"/proc/{writer}").exists()
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{writer}/cmdline").exists() and time.monotonic() < deadline:
            if b"bulk/writer" not in Path(f"/proc/{writer}/cmdline").read_bytes():
                break  # a zombie (no cmdline) or the pid reused: gone
            time.sleep(0.01)
        alive = Path(f"/proc/{writer}/cmdline").exists() and (
            b"bulk/writer" in Path(f"/proc/{writer}/cmdline").read_bytes()
        )
        assert not alive, "the writer outlived its parent"
    finally:
        os.kill(holder, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(writer, signal.SIGKILL)


def test_a_customer_carried_from_chunk_to_chunk_is_snapshotted_when_its_last_chunk_commits(
    store_url: str,
) -> None:
    # Each chunk leaves the customer to the next (it may hold unsaved events until then), so
    # the snapshot due since an earlier chunk is taken by the chunk that finishes it, even when
    # the chunks in between only refused its commands.
    purchases = [small("N", f"O-{i}") for i in range(12)]  # versions 2..13: crosses 10
    repeats = [  # the same orders again under other command ids: refused, nothing stored
        msgspec.structs.replace(small("N", f"O-{i}"), command_id=f"again-{i}") for i in range(12)
    ]
    with CRM(store_url, snapshot_interval=10) as crm:
        crm.register_customer(external_ref="N", occurred_at=REGISTERED, category="signed")
        outcomes = list(crm.execute_many([*purchases, *repeats], chunk_size=7))
        assert [type(o).__name__ for o in outcomes[12:]] == ["DuplicateId"] * 12
        customer_id = crm.get_customer("N").id
        assert crm.snapshots is not None
        assert [s.originator_version for s in crm.snapshots.get(customer_id)] == [13]
    with CRM(store_url) as fresh:  # loads from that snapshot: the same state
        assert orders_and_version(fresh, "N") == ({f"O-{i}" for i in range(12)}, 13)


# --- threads: a chunk holds its customers' locks only while it takes their states -------------


def stripes_held_elsewhere(crm: CRM) -> list[int]:
    """Stripe locks this thread cannot take at once (held by another thread)."""
    held = []
    for stripe, lock in enumerate(crm.command_cache._locks):
        if lock.acquire(timeout=0.05):
            lock.release()
        else:
            held.append(stripe)
    return held


def test_two_bulk_runs_in_two_threads_on_the_same_customers_both_finish(store_url: str) -> None:
    both_started = threading.Barrier(2, timeout=10)

    def source(first: str, second: str) -> Iterator[cmd.Command]:
        yield cmd.RegisterCustomer(external_ref=first, occurred_at=REGISTERED, command_id=first)
        both_started.wait()  # each run now has a chunk on its first customer in hand
        yield cmd.RegisterCustomer(external_ref=second, occurred_at=REGISTERED, command_id=second)

    with CRM(store_url) as crm:
        results: dict[str, list[object]] = {}

        def run(name: str, first: str, second: str) -> None:
            results[name] = list(crm.execute_many(source(first, second), chunk_size=1))

        threads = [
            threading.Thread(target=run, args=("a", "P", "Q")),
            threading.Thread(target=run, args=("b", "Q", "P")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "the two runs deadlocked"
        outcomes = [o for name in ("a", "b") for o in results[name]]
        assert all(isinstance(o, CommandResult) for o in outcomes)
        assert sum(not o.duplicate for o in outcomes if isinstance(o, CommandResult)) == 2
        assert stripes_held_elsewhere(crm) == []


def test_a_bulk_run_advanced_from_different_threads_leaves_no_lock_held(store_url: str) -> None:
    with CRM(store_url) as crm:
        commands = [
            cmd.RegisterCustomer(external_ref=f"T-{i}", occurred_at=REGISTERED) for i in range(9)
        ]
        outcomes = crm.execute_many(commands, chunk_size=3)
        pools = [ThreadPoolExecutor(1), ThreadPoolExecutor(1)]
        try:  # as a web framework's thread pool iterates a generator
            results = [pools[i % 2].submit(next, outcomes).result() for i in range(9)]
        finally:
            for pool in pools:
                pool.shutdown()
        assert all(isinstance(o, CommandResult) and o.version == 1 for o in results)
        assert stripes_held_elsewhere(crm) == []


def test_a_store_error_while_deciding_fails_the_run_and_leaves_no_lock_held(
    store_url: str,
) -> None:
    with CRM(store_url) as crm, ThreadPoolExecutor(1) as pool:
        commands = [small("E", f"O-{i}") for i in range(6)]
        crm.register_customer(external_ref="E", occurred_at=REGISTERED, category="signed")
        outcomes = crm.execute_many(commands, chunk_size=2)

        def first_then_break() -> None:
            next(outcomes)  # the next chunk's idempotency lookup will find no table
            db = Database(crm.store.config)
            try:
                with db.transaction() as tx:
                    tx.execute(f"DROP TABLE {COMMANDS_TABLE}")
            finally:
                db.close()
            list(outcomes)

        with pytest.raises(Exception, match=COMMANDS_TABLE):
            pool.submit(first_then_break).result(timeout=60)
        assert stripes_held_elsewhere(crm) == []


def test_a_chunk_size_below_one_runs_each_command_in_its_own_chunk(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="Z1", occurred_at=REGISTERED, category="signed")
        outcomes = list(crm.execute_many([small("Z1", "O-1"), small("Z1", "O-2")], chunk_size=0))
        assert [o.version for o in outcomes if isinstance(o, CommandResult)] == [2, 3]


def test_the_postgres_writer_gets_its_connection_settings_off_the_command_line(
    postgres_url: str,
) -> None:
    with CRM(postgres_url) as crm:
        crm.register_customer(external_ref="S1", occurred_at=REGISTERED)
        outcomes = crm.execute_many(
            [small("S1", f"O-{i}") for i in range(2 * BIG)], chunk_size=BIG, validated=True
        )
        next(outcomes)
        (writer,) = writer_children()
        command_line = Path(f"/proc/{writer}/cmdline").read_bytes()
        assert b"bulk/writer" in command_line
        assert b"dbname" not in command_line and b"password" not in command_line
        assert all(isinstance(o, CommandResult) for o in outcomes)


def test_closing_a_writer_whose_input_another_process_holds_open_ends_it(
    sqlite_url: str,
) -> None:
    db_name = sqlite_url.removeprefix("sqlite:///")
    with CRM(sqlite_url) as crm:
        sql = crm.recorder.save_statements  # type: ignore[attr-defined]
    writer = BulkWriterProcess("sqlite", db_name, 5.0, sql)
    stdin = writer._child.stdin
    assert stdin is not None
    holder = subprocess.Popen(["sleep", "60"], pass_fds=[stdin.fileno()])
    try:
        started = time.monotonic()
        writer.close()  # an end frame, not the end of input, tells it to stop
        assert writer._child.returncode == 0
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
