"""Output for people and for programs: a table on a terminal and JSON otherwise, rows selected
by --owner / --segment, ordered by --sort, cut by --limit, names beside refs, 120 columns."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from crm_es.cli.render import display_width
from tests.helpers.cli import run

CUSTOMERS = [
    ("C-1", "王芳", "staff:li", "500.00"),
    ("C-2", "李娜", "staff:li", "90.00"),
    ("C-3", "张伟", "staff:wang", "1200.00"),
    ("C-4", "刘洋", "staff:wang", None),
]


@pytest.fixture
def store(sqlite_url: str) -> str:
    lines = []
    for ref, name, owner, amount in CUSTOMERS:
        lines.append({"type": "register_customer", "external_ref": ref, "name": name,
                      "owner": owner, "occurred_at": "2026-01-05T10:00:00Z"})  # fmt: skip
        if amount:
            lines.append({"type": "record_purchase", "customer": ref, "order_id": f"O-{ref}",
                          "amount": amount, "currency": "CNY",
                          "occurred_at": "2026-02-01T10:00:00Z"})  # fmt: skip
    script = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert run(sqlite_url, "exec", "-", input=script)[0] == 0
    return sqlite_url


def _report(url: str, *args: str) -> dict[str, object]:
    code, out, err = run(url, "report", *args, "--format", "json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_owner_sort_and_limit_select_the_rows_of_every_format(store: str) -> None:
    data = _report(store, "segments", "--owner", "staff:li", "--sort", "-monetary")
    assert [c["external_ref"] for c in data["customers"]] == ["C-1", "C-2"]  # type: ignore[union-attr,index]
    # the totals stay those of every customer: a selection chooses what is listed
    assert sum(data["lifecycle_sizes"].values()) == 4  # type: ignore[union-attr]
    data = _report(store, "segments", "--sort", "monetary", "--limit", "2")
    assert [c["monetary"] for c in data["customers"]] == ["0.00", "90.00"]  # type: ignore[union-attr,index]
    code, out, _ = run(store, "report", "segments", "--segment", "prospect", "--format", "csv")
    assert code == 0 and [r.split(",")[1] for r in out.splitlines()[1:]] == ["C-4"]
    churn = _report(store, "churn", "--owner", "staff:wang")
    # the churn report lists buyers: C-4 never bought
    assert [c["external_ref"] for c in churn["customers"]] == ["C-3"]  # type: ignore[union-attr,index]


def test_a_table_names_the_customers_fits_120_columns_and_says_what_it_left_out(
    store: str,
) -> None:
    code, out, _ = run(store, "report", "segments", "--format", "table", "--limit", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["external_ref", "name", "owner"]
    assert lines[2].split()[:2] == ["C-3", "张伟"]  # by net spend, highest first
    assert lines[-1] == "(2 of 4 rows: --limit 0 shows all)"
    assert all(display_width(line) <= 120 for line in lines)
    assert "customer_id" not in lines[0]
    # names are for people: never in the report's JSON or CSV
    assert "王芳" not in run(store, "report", "segments", "--format", "csv")[1]
    assert "王芳" not in run(store, "report", "segments", "--format", "json")[1]


def test_unknown_sort_or_column_is_an_error_naming_the_columns(store: str) -> None:
    code, _, err = run(store, "report", "kpi", "--sort", "nope")
    assert code == 1 and "--sort 'nope': not a column" in err and "revenue_CNY" in err
    code, _, err = run(store, "report", "kpi", "--format", "table", "--columns", "owner,zz")
    assert code == 1 and "--columns: no column zz" in err


def _on_a_terminal(url: str, *args: str) -> str:
    """``crm-es ARGS`` with its stdout on a pseudo-terminal, as a person runs it."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_es.cli", "--db", url, *args],
        stdout=follower, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_a_terminal_gets_tables_and_a_pipe_gets_json(store: str, tmp_path: Path) -> None:
    table = _on_a_terminal(store, "report", "kpi")
    assert table.splitlines()[0].split()[:2] == ["owner", "customers"]
    shown = _on_a_terminal(store, "show", "C-1")
    assert "external_ref: C-1" in shown and "  name: 王芳" in shown
    piped = run(store, "report", "kpi")[1]  # CliRunner's stdout is not a terminal
    assert json.loads(piped)["owners"][0]["owner"] == "staff:li"
    assert json.loads(run(store, "show", "C-1")[1])["external_ref"] == "C-1"
