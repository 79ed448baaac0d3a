"""Benchmarks of crm_es, reported as ratios measured side by side in one run.

    python scripts/bench.py [--store sqlite|postgres] [--db URL] [--events N] [--json]
                            [--only commands,import,...]

Each figure is measured against a baseline in the same run where there is one: the plain
``eventsourcing`` library with its defaults doing the same commands (bench_baseline.py), or the
raw store inserting the same stored rows into a bare table. The machine is shared and noisy, so
the ratio is the figure to compare between runs; absolute rates are printed too. See
docs/performance.md for the method and the figures measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_baseline import PlainCRM
from bench_cpu import CpuMeter, is_local
from bench_raw import raw_commit_rate, raw_insert_rates
from crm_es import CRM, CrmError
from crm_es.app.importer import IMPORT_CHUNK_ROWS
from crm_es.audit.history import history_line
from crm_es.demo.generator import generate_commands
from crm_es.domain import commands as cmd
from crm_es.reports.api import Reports

FIGURES = (
    "commands", "commands_concurrent", "import", "import_cli", "rebuild", "replay", "report",
    "reports_scale", "startup",
)  # fmt: skip


class Figure(msgspec.Struct):
    value: float
    unit: str
    target: str
    met: bool
    baseline: float | None = None
    ratio: float | None = None
    note: str = ""
    cpu_us: float | None = None  # CPU per event of every process of the run, where measured


# --- stores -----------------------------------------------------------------------------------


@contextmanager
def fresh_store(store: str, base_url: str, tag: str) -> Iterator[str]:
    """An empty store URL: a temporary SQLite file, or a PostgreSQL schema dropped afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"crm-bench-{tag}-") as d:
            yield f"sqlite:///{d}/crm.db"
        return
    import psycopg

    from crm_es.store.url import parse_store_url

    schema = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in base_url else "?"
    with psycopg.connect(parse_store_url(base_url).conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')  # the plain library expects it to exist
    try:
        yield f"{base_url}{sep}schema={schema}"
    finally:
        with psycopg.connect(parse_store_url(base_url).conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def plain_env(url: str) -> dict[str, str]:
    from crm_es.store.url import parse_store_url

    env = dict(parse_store_url(url).env)
    env.pop("APPLICATION_RECORDER_TOPIC", None)  # the library's own recorder
    return env


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --- figures ----------------------------------------------------------------------------------


def realistic_commands(n: int, seed: int = 11) -> list[cmd.Command]:
    """The first ``n`` commands of a demo population: every kind of command, in time order."""
    return list(generate_commands(customers=max(n // 25, 20), years=2, seed=seed))[:n]


def bench_commands(store: str, base: str, n: int = 3000, slices: int = 10) -> Figure:
    """Ours and the plain library take turns, one slice of the commands each, both stores open:
    a burst of load from other jobs (a disk busy with someone's fsyncs for a few seconds) then
    hits both sides alike instead of whichever happened to be running, so the ratio stays
    comparable between runs. Each side still runs every command in order, one commit each."""
    commands = realistic_commands(n)
    size = -(-n // slices)
    chunks = [commands[i : i + size] for i in range(0, n, size)]

    def ours(crm: CRM, chunk: list[cmd.Command]) -> None:
        for c in chunk:
            with suppress(CrmError):
                crm.execute(c)

    def plain(app: PlainCRM, chunk: list[cmd.Command]) -> None:
        for c in chunk:
            app.handle(c)

    with fresh_store(store, base, "cmd_plain") as p, fresh_store(store, base, "cmd_ours") as o:
        app, crm = PlainCRM(env=plain_env(p)), CRM(o)
        plain_s = ours_s = 0.0
        try:
            for chunk in chunks:
                plain_s += timed(lambda chunk=chunk: plain(app, chunk))[0]
                ours_s += timed(lambda chunk=chunk: ours(crm, chunk))[0]
        finally:
            app.close()
            crm.close()
        limit = raw_commit_rate(store, o)
    rate, base_rate = n / ours_s, n / plain_s
    return Figure(
        round(rate),
        "commands/s",
        ">= 3x the plain library",
        rate / base_rate >= 3,
        baseline=round(base_rate),
        ratio=round(rate / base_rate, 2),
        note=f"{n} realistic mixed commands, one client, one commit each; the store's raw "
        f"one-commit-per-row limit here: {limit:.0f}/s ({rate / limit:.2f} of it)",
    )


def bench_commands_concurrent(base: str, clients: int = 8, per_client: int = 250) -> Figure:
    """8 client threads on PostgreSQL: half their commands on own customers, half on shared."""

    def workload(client: int) -> list[cmd.Command]:
        out: list[cmd.Command] = []
        for i in range(per_client):
            ref = f"OWN-{client}-{i % 20}" if i % 2 else f"SHARED-{i % 10}"
            out.append(cmd.GrantPoints(customer=ref, points=1 + i % 5))
        return out

    refs = [f"OWN-{c}-{i}" for c in range(clients) for i in range(20)] + [
        f"SHARED-{i}" for i in range(10)
    ]
    registrations = [cmd.RegisterCustomer(external_ref=r) for r in refs]

    def run(execute: Callable[[cmd.Command], Any]) -> float:
        loads = [workload(c) for c in range(clients)]
        threads = [threading.Thread(target=lambda w=w: [execute(c) for c in w]) for w in loads]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started

    total = clients * per_client
    with (
        fresh_store("postgres", base, "conc_plain") as p,
        fresh_store("postgres", base, "conc_ours") as o,
    ):
        plain = PlainCRM(env=plain_env(p))
        for r in registrations:
            plain.handle(r)
        plain_s = run(lambda c: _retrying(plain.handle, c))
        plain.close()
        with CRM(o) as crm:
            list(crm.execute_many(registrations))
            ours_s = run(crm.execute)
            balance = sum(crm.get_customer(r).points_balance for r in refs)
    expected = sum(1 + i % 5 for _ in range(clients) for i in range(per_client))
    rate, base_rate = total / ours_s, total / plain_s
    return Figure(
        round(rate),
        "commands/s",
        ">= 5x the plain library, 8 clients",
        rate / base_rate >= 5,
        baseline=round(base_rate),
        ratio=round(rate / base_rate, 2),
        note=f"{clients} threads, {total} commands; every acknowledged command durable: "
        f"points {balance} == {expected}: {balance == expected}",
    )


def _retrying(handle: Callable[[cmd.Command], None], command: cmd.Command) -> None:
    """The plain library has no retry: a collision is retried here, as an application would."""
    from eventsourcing.persistence import IntegrityError

    for _ in range(50):
        try:
            handle(command)
            return
        except IntegrityError:
            continue


_PURCHASES_START = datetime(2024, 1, 1, tzinfo=UTC)


def purchase_commands(customers: int, events: int) -> Iterator[cmd.Command]:
    start = _PURCHASES_START
    for i in range(events):
        yield cmd.RecordPurchase(
            customer=f"B-{(i * 7919) % customers}",
            order_id=f"O-{i}",
            amount=Decimal(100 + (i * 37) % 90_000).scaleb(-2),
            currency="CNY",
            occurred_at=start + timedelta(seconds=30 * i),
            command_id=f"import-{i}",
        )


def write_purchases_csv(path: Path, customers: int, events: int) -> None:
    """The purchases of :func:`purchase_commands` as the CSV file a user would import."""
    start = _PURCHASES_START
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("customer_ref,occurred_at,amount,currency,order_id\n")
        for i in range(events):
            at = (start + timedelta(seconds=30 * i)).isoformat()
            amount = Decimal(100 + (i * 37) % 90_000).scaleb(-2)
            f.write(f"B-{(i * 7919) % customers},{at},{amount},CNY,O-{i}\n")


def register_bench_customers(crm: CRM, customers: int) -> None:
    registrations = (
        cmd.RegisterCustomer(external_ref=f"B-{i}", occurred_at=datetime(2023, 12, 1, tzinfo=UTC))
        for i in range(customers)
    )
    list(crm.execute_many(registrations, chunk_size=2000, validated=True))


def bench_import(store: str, url: str, events: int) -> Figure:
    customers = max(events // 10, 100)
    # As `crm-es import` does: the cache holds every customer of the import, and one
    # transaction per IMPORT_CHUNK_ROWS rows.
    with CRM(url, cache_size=customers) as crm:
        register_bench_customers(crm, customers)
        first = (crm.recorder.max_notification_id() or 0) + 1
        host = crm.store.config.env.get("POSTGRES_HOST", "")
        server_here = store == "postgres" and is_local(host)
        with CpuMeter(postgres=server_here) as meter:
            seconds, outcomes = timed(
                lambda: sum(
                    1
                    for o in crm.execute_many(
                        purchase_commands(customers, events),
                        chunk_size=IMPORT_CHUNK_ROWS,
                        validated=True,
                    )
                    if isinstance(o, Exception)
                )
            )
        appended = (crm.recorder.max_notification_id() or 0) - first + 1
        raw = raw_insert_rates(crm, first, store, "import-", IMPORT_CHUNK_ROWS)
    rate, raw_rate = appended / seconds, raw.events
    target = 100_000 if store == "sqlite" else 50_000
    return Figure(
        round(rate),
        "events/s",
        f">= {target:,} events/s and >= 0.5 of raw",
        rate >= target and rate / raw_rate >= 0.5,
        baseline=round(raw_rate),
        ratio=round(rate / raw_rate, 3),
        note=f"{appended} purchase events for {customers} customers, {outcomes} rejected, "
        f"{IMPORT_CHUNK_ROWS} per transaction; baseline = the same stored rows into a bare table "
        f"in one transaction (with the import's idempotency records too: "
        f"{raw.with_records:.0f} events/s, {rate / raw.with_records:.2f} of it; and those in "
        f"the import's transactions: {raw.in_chunks:.0f} events/s, {rate / raw.in_chunks:.2f} "
        f"of it); {meter.used.per_event(appended)}",
        cpu_us=round(_cpu_total(meter) / max(appended, 1) * 1e6, 1),
    )


def _cpu_total(meter: CpuMeter) -> float:
    used = meter.used
    return used.this + used.children + (used.server or 0.0)


def cold_loads(url: str, customers: int) -> float:
    """CPU seconds to load every customer once into an empty cache, as a new process must
    (the ``import`` figure's customers are all in its cache already): with ``Store.load_many``
    in chunks, as the bulk path reads the customers a chunk needs."""
    from crm_es.domain.ids import customer_id_for_ref

    ids = [customer_id_for_ref(f"B-{i}") for i in range(customers)]
    with CRM(url) as crm:
        started = time.process_time()
        for start in range(0, customers, IMPORT_CHUNK_ROWS):
            crm.store.load_many(ids[start : start + IMPORT_CHUNK_ROWS])
        return time.process_time() - started


def bench_import_cli(store: str, url: str, events: int, imported: Figure) -> Figure:
    """``crm-es import purchases FILE`` as a subprocess, end to end (interpreter start, the
    file's encoding scan, reading, deciding, storing, the summary), on the purchases of the
    ``import`` figure written as a CSV file, for the same pre-registered customers in a store
    of its own. The ratio is against the ``import`` figure of the same run (``imported``); on
    a machine whose load comes and goes it moves with it, so the note also compares the CPU
    per event of every process of both runs, and gives the cost of loading each customer into
    an empty cache, which the CLI (a new process) pays and the ``import`` figure does not."""
    customers = max(events // 10, 100)
    import_rate = imported.value
    with CRM(url) as crm:
        register_bench_customers(crm, customers)
        first = (crm.recorder.max_notification_id() or 0) + 1
        host = crm.store.config.env.get("POSTGRES_HOST", "")
    loads = cold_loads(url, customers)
    with tempfile.TemporaryDirectory(prefix="crm-bench-csv-") as d:
        path = Path(d) / "purchases.csv"
        write_purchases_csv(path, customers, events)
        size_mb = path.stat().st_size / 1e6
        cli = [sys.executable, "-m", "crm_es.cli", "--db", url, "import", "purchases", str(path)]
        server_here = store == "postgres" and is_local(host)
        # The CLI and its writer child are reaped children of this process: their CPU counts
        # as "writer" below (the whole CLI), this process's own is ~0.
        with CpuMeter(postgres=server_here) as meter:
            seconds, done = timed(lambda: subprocess.run(cli, capture_output=True, text=True))
    if done.returncode != 0:
        raise SystemExit(f"crm-es import failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    with CRM(url) as crm:
        appended = (crm.recorder.max_notification_id() or 0) - first + 1
    rate = appended / seconds
    inside = summary["seconds"]  # import_csv's own time: no start-up, no encoding scan
    ratio = rate / import_rate if import_rate else 0.0
    used = meter.used.server
    server = f", the server's {used / max(appended, 1) * 1e6:.1f} µs" if used is not None else ""
    cpu = _cpu_total(meter) / max(appended, 1) * 1e6
    by_cpu = f"{imported.cpu_us / cpu:.3f}" if imported.cpu_us else "?"
    return Figure(
        round(rate),
        "events/s",
        ">= 0.8 of the import figure",
        ratio >= 0.8,
        baseline=round(import_rate),
        ratio=round(ratio, 3),
        note=f"`crm-es import purchases` as a subprocess on a {size_mb:.1f} MB CSV of "
        f"{events} rows ({summary['stored']} stored, {summary['rejected']} rejected), "
        f"{customers} customers, end to end {seconds:.2f} s; the import inside it (the "
        f"summary's seconds: no interpreter start-up or encoding scan) {inside:.2f} s = "
        f"{appended / inside:,.0f} events/s, {appended / inside / import_rate:.3f} of the import "
        f"figure; CPU per event of the CLI process and its writer child together: "
        f"{meter.used.children / max(appended, 1) * 1e6:.1f} µs{server} = {cpu:.1f} µs, against "
        f"{imported.cpu_us} µs for the import figure: {by_cpu} of its rate on the same cores; "
        f"of it, loading the {customers} customers into an empty cache: {loads:.2f} s CPU, "
        f"{loads / max(appended, 1) * 1e6:.1f} µs per event",
        cpu_us=round(cpu, 1),
    )


def bench_rebuild(url: str) -> Figure:
    """Rebuild every read model in a child process, to measure its peak memory alone."""
    code = (
        "import json, resource, sys, time\n"
        "from crm_es import CRM\n"
        "from crm_es.projections import ProjectionEngine, read_models\n"
        "crm = CRM(sys.argv[1]); engine = ProjectionEngine(crm, read_models(), batch_size=5000)\n"
        "head = engine.head(); t = time.perf_counter()\n"
        "engine.rebuild_many(list(engine.models))\n"
        "dt = time.perf_counter() - t\n"
        # ru_maxrss of a child counts its parent's memory at fork (Linux carries it over exec:
        # 210 MB reported for a 78 MB rebuild after an import); VmHWM is this process's own.
        "try:\n"
        "    peak = next(int(l.split()[1]) for l in open('/proc/self/status')\n"
        "                if l.startswith('VmHWM:')) / 1024\n"
        "except OSError:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({'events': head, 'seconds': dt, 'peak_mb': peak,\n"
        "                  'models': len(engine.models)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rate = result["events"] / result["seconds"]
    return Figure(
        round(rate),
        "events/s",
        ">= 100,000 events/s, peak < 500 MB",
        rate >= 100_000 and result["peak_mb"] < 500,
        note=f"{result['events']} events, {result['models']} read models in one pass, peak RSS "
        f"{result['peak_mb']:.0f} MB",
    )


def bench_replay(store: str, base: str, events: int = 10_000) -> Figure:
    with fresh_store(store, base, "replay") as url, CRM(url) as crm:
        crm.register_customer(external_ref="LONG")
        contacts = (
            cmd.LogContact(
                customer="LONG", channel="phone", direction="inbound", summary=f"call {i}"
            )
            for i in range(events - 1)
        )
        list(crm.execute_many(contacts, chunk_size=1000, validated=True))
        loads = [timed(lambda: crm.get_customer("LONG"))[0] * 1000 for _ in range(30)]
        # Each event as JSON: `event_record` encoded, the bytes `history_line` gives.
        history_ms = min(
            timed(lambda: [history_line(e) for e in crm.history("LONG")])[0] * 1000
            for _ in range(3)
        )
    load_p50 = statistics.median(loads)
    return Figure(
        round(load_p50, 2),
        "ms (load p50)",
        "load p50 < 5 ms; history < 100 ms",
        load_p50 < 5 and history_ms < 100,
        note=f"customer with {events} events; full history as JSON Lines {history_ms:.0f} ms",
    )


def bench_report(url: str) -> Figure:
    with CRM(url) as crm, Reports(crm) as reports:
        reports.engine.catch_up_all()
        reports.refresh = False
        seg_s, seg = timed(reports.segments)
        churn_s, _ = timed(reports.churn)
    worst = max(seg_s, churn_s)
    return Figure(
        round(worst, 2),
        "s (slowest)",
        "< 2 s each",
        seg_s < 2 and churn_s < 2,
        note=f"{len(seg.customers)} customers: segments {seg_s:.2f} s, churn {churn_s:.2f} s",
    )


def bench_startup(store: str, base: str, runs: int = 7) -> Figure:
    """Wall time of ``crm-es --help`` and of ``crm-es show`` on a small store, as a user waits
    for them (a new process each, median of ``runs``); the baseline is a bare interpreter."""
    with fresh_store(store, base, "startup") as url:
        with CRM(url) as crm:
            crm.register_customer(external_ref="C-1", name="王芳")
        cli = [sys.executable, "-m", "crm_es.cli", "--db", url]

        def wall(args: list[str]) -> float:
            return statistics.median(
                timed(lambda: subprocess.run(args, capture_output=True, check=True))[0]
                for _ in range(runs)
            )

        bare = wall([sys.executable, "-c", "pass"])
        help_s, show_s = wall([*cli, "--help"]), wall([*cli, "show", "C-1"])
    worst = max(help_s, show_s)
    return Figure(
        round(worst, 3),
        "s (slowest)",
        "--help and show < 0.3 s",
        worst < 0.3,
        baseline=round(bare, 3),
        ratio=round(worst / bare, 1) if bare else None,
        note=f"--help {help_s:.3f} s, show {show_s:.3f} s; a bare interpreter {bare:.3f} s "
        f"(median of {runs})",
    )


# --- main -------------------------------------------------------------------------------------


def _master_key() -> None:
    """A PostgreSQL store needs a master key kept outside it: a throw-away one for this run
    (and the CLI subprocesses it starts), unless CRM_ES_MASTER_KEY_FILE names one."""
    if os.environ.get("CRM_ES_MASTER_KEY_FILE"):
        return
    import secrets

    fd, path = tempfile.mkstemp(prefix="crm-bench-", suffix=".key")
    os.write(fd, (secrets.token_hex(32) + "\n").encode())
    os.close(fd)
    os.environ["CRM_ES_MASTER_KEY_FILE"] = path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--db",
        default=os.environ.get("CRM_ES_DB"),
        help="PostgreSQL URL (default $CRM_ES_DB); each figure uses a schema",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="events for the import, rebuild and report figures",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=100_000,
        help="customers of the reports_scale figure (about 9.5 purchases each)",
    )
    parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.store == "postgres" and not (args.db or "").startswith("postgres"):
        parser.error("--store postgres needs --db postgresql://… (or CRM_ES_DB)")
    base = args.db or ""
    if args.store == "postgres" and "master_key_file" not in base:
        _master_key()
    only = set(args.only.split(","))
    figures: dict[str, Figure] = {}

    def record(name: str, make: Callable[[], Figure]) -> None:
        if name in only:
            print(f"measuring {name} …", file=sys.stderr, flush=True)
            figures[name] = make()
            print(f"  {name}: {figures[name]}", file=sys.stderr, flush=True)

    record("commands", lambda: bench_commands(args.store, base))
    if args.store == "postgres":
        record("commands_concurrent", lambda: bench_commands_concurrent(base))
    if only & {"import", "import_cli", "rebuild", "report"}:
        with fresh_store(args.store, base, "bulk") as url:
            record("import", lambda: bench_import(args.store, url, args.events))
            if "import" not in only:  # the store of rebuild and report, the ratio's baseline
                figures["import"] = bench_import(args.store, url, args.events)
            if "import_cli" in only:  # right after the import, in a store of its own
                with fresh_store(args.store, base, "cli") as cli_url:
                    imported = figures["import"]
                    record(
                        "import_cli",
                        lambda: bench_import_cli(args.store, cli_url, args.events, imported),
                    )
            record("rebuild", lambda: bench_rebuild(url))
            record("report", lambda: bench_report(url))
            if "import" not in only:
                figures.pop("import")
    if "reports_scale" in only:
        from bench_scale import reports_scale

        with fresh_store(args.store, base, "scale") as url:
            record("reports_scale", lambda: Figure(**reports_scale(url, args.customers)))
    record("replay", lambda: bench_replay(args.store, base))
    record("startup", lambda: bench_startup(args.store, base))
    if args.json:
        print(msgspec.json.encode({"store": args.store, "figures": figures}).decode())
    else:
        for name, f in figures.items():
            ratio = f" ratio {f.ratio} (baseline {f.baseline})" if f.ratio is not None else ""
            print(
                f"{name:20} {f.value:>12,} {f.unit:<16}{ratio}  target {f.target}: "
                f"{'met' if f.met else 'NOT met'}  [{f.note}]"
            )


if __name__ == "__main__":
    main()
