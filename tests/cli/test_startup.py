"""Start-up: ``crm-es --help`` loads no store, no numpy, scipy, matplotlib or PostgreSQL driver,
and ``show`` on SQLite no analytics and no PostgreSQL driver (what they import is what a user
waits for; the time itself is a figure of scripts/bench.py, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crm_es import CRM

HEAVY = ("numpy", "scipy", "matplotlib", "psycopg", "eventsourcing.postgres", "crm_es.reports")

PROBE = """
import sys, json
from crm_es.cli import main
try:
    main.main(args=sys.argv[1:], prog_name="crm-es", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def loaded(*args: str, prints: str = "") -> list[str]:
    """The heavy modules loaded by running ``crm-es ARGS`` (whose output must hold
    ``prints``)."""
    probe = PROBE.format(heavy=repr(HEAVY))
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert prints in done.stdout
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["report", "--help"], ["demo", "--help"],
                                  ["audit", "verify", "--help"], ["import", "purchases", "--help"]])  # fmt: skip
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    assert loaded(*args, prints="Usage: crm-es") == []


def test_show_on_sqlite_loads_no_analytics_and_no_postgresql_driver(sqlite_url: str) -> None:
    with CRM(sqlite_url) as crm:
        crm.register_customer(external_ref="C-1", name="王芳")
    assert loaded("--db", sqlite_url, "show", "C-1", prints='"external_ref":"C-1"') == []
