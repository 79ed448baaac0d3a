"""Where the CPU of a bulk run goes: this process, its children, and a local PostgreSQL server.

The import figure is bounded by the machine's cores as much as by any one process: the deciding
process, the writer child and (on PostgreSQL) the server's backend all want a core. Summing
their CPU per event and dividing the cores by it gives the ceiling the run could reach if its
processes overlapped perfectly: the measurement that shows what limits the figure.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import msgspec


class CpuUse(msgspec.Struct, frozen=True):
    """CPU seconds over a block of work."""

    this: float  # the calling process (every thread of it)
    children: float  # children reaped meanwhile: the bulk writer, ended when its run ends
    server: float | None  # the local PostgreSQL server's processes, None when not measured

    def per_event(self, events: int) -> str:
        events = max(events, 1)
        parts = [
            f"deciding {self.this / events * 1e6:.1f} µs",
            f"writer {self.children / events * 1e6:.1f} µs",
        ]
        total = self.this + self.children
        if self.server is not None:
            parts.append(f"server {self.server / events * 1e6:.1f} µs")
            total += self.server
        per_event = max(total / events, 1e-9)
        cores = _cores()
        return (
            f"CPU per event: {', '.join(parts)} = {per_event * 1e6:.1f} µs; "
            f"{cores} cores at that cost: ceiling {cores / per_event:,.0f} events/s"
        )


def _cores() -> int:
    """The cores this process may run on (its affinity; ``cpu_count`` where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def is_local(host: str) -> bool:
    """A server on this machine (TCP loopback or a Unix socket), whose processes we can read."""
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postgres_server() -> float | None:
    """CPU seconds of every ``postgres`` process on this machine, those that ended included
    (a backend's time is added to the postmaster's children's time when it exits). That is the
    whole server: other sessions' work at the same time counts too, so measure on a quiet
    server. None when there is no readable ``/proc`` or no such process."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    names: dict[int, tuple[str, int, list[str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        names[int(stat.parent.name)] = (name, int(fields[1]), fields)
    for name, parent, fields in names.values():
        if name != "postgres":
            continue
        found = True
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if names.get(parent, ("",))[0] != "postgres":  # the postmaster: its ended backends
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / ticks if found else None


class CpuMeter:
    """``with CpuMeter(postgres) as meter: ...`` then ``meter.used``."""

    def __init__(self, postgres: bool) -> None:
        self._postgres = postgres
        self.used = CpuUse(0.0, 0.0, None)

    def _now(self) -> CpuUse:
        server = _postgres_server() if self._postgres else None
        return CpuUse(time.process_time(), _children(), server)

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end, start = self._now(), self._start
        server = None
        if end.server is not None and start.server is not None:
            server = end.server - start.server
        self.used = CpuUse(end.this - start.this, end.children - start.children, server)
