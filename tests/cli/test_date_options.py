"""Every date a user can type is either valid or a clear ``Error:``, never a traceback: a walk
over every command's date options (found in the CLI itself, so a new one is walked too), the
CSV import's and exec's times, and stream versions, with extreme and malformed values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from crm_es.cli import main

EXTREMES = [
    "9999-12-31", "0001-01-01", "1899-12-31", "1900-01-01", "9990-12-31", "99999-01-01",
    "2026-02-30", "", " ", "now", "2026-01-01T25:00", "2026-01-01T10:00:00+25:00",
    "9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59", "1e10", "-1",
    "2026-01-01T00:00:00Z", "２０２６-01-01", "2026-W01", "2026-06-30\x00", "2026-06-30" * 1000,
]  # fmt: skip
# What the walk gives the commands' required arguments.
ARGUMENTS = {"customer": "C-1", "out": "{tmp}/out.html", "file": "{tmp}/in.csv"}


def date_options(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """(command path..., option) for every option whose metavar says it takes a date."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from date_options(command, (*path, name))
            continue
        for param in command.params:
            if isinstance(param, click.Option) and param.metavar in ("D", "T"):
                yield (*path, name, param.opts[0])


def invocation(path: tuple[str, ...], tmp: Path) -> list[str]:
    *names, option = path
    command: click.Command = main
    for name in names:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    args = [str(p.name) for p in command.params if isinstance(p, click.Argument) and p.required]
    extra = [
        value
        for p in command.params
        if isinstance(p, click.Option) and p.required
        for value in (p.opts[0], ARGUMENTS[str(p.name)].format(tmp=tmp))
    ]
    return [*names, *(ARGUMENTS[a].format(tmp=tmp) for a in args), *extra, option]


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    lines = [
        {"type": "register_customer", "external_ref": "C-1", "occurred_at": "2026-01-01T00:00:00Z"},
        {"type": "record_purchase", "customer": "C-1", "order_id": "O-1", "amount": "10",
         "currency": "CNY", "occurred_at": "2026-02-01T00:00:00Z"},
    ]  # fmt: skip
    result = CliRunner().invoke(
        main, ["--db", url, "exec", "-"], input="\n".join(json.dumps(x) for x in lines)
    )
    assert result.exit_code == 0, result.output
    return url


def assert_valid_or_clear_error(
    result: click.testing.Result, context: str, prefix: str = "Error:"
) -> None:
    """Exit 0, or exit 1 with the error as the first line (no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{context}: {result.exception!r}"
    )
    if result.exit_code != 0:
        assert result.exit_code == 1, context
        errors = [line for line in result.stderr.splitlines() if not line.startswith("importing")]
        assert errors and errors[0].startswith(prefix), f"{context}: {result.stderr[:200]}"
        assert "Traceback" not in result.stderr, context


def test_the_walk_finds_the_date_options() -> None:
    found = {" ".join(p) for p in date_options(main)}
    assert {"show --as-of", "show --known-at", "history --since", "history --until",
            "report segments --as-of", "report kpi --known-at", "report html --as-of",
            "audit export --known-at", "maintain --at"} <= found  # fmt: skip


@pytest.mark.parametrize("path", list(date_options(main)), ids=" ".join)
def test_every_date_option_takes_any_value_without_a_traceback(
    store: str, tmp_path: Path, path: tuple[str, ...]
) -> None:
    (tmp_path / "in.csv").write_text("customer_ref,order_id,amount,currency\n", encoding="utf-8")
    for value in EXTREMES:
        args = [*invocation(path, tmp_path), value]
        result = CliRunner().invoke(main, ["--db", store, *args])
        assert_valid_or_clear_error(result, f"{args[:-1]} {value[:40]!r}")
        if result.exit_code == 0:
            assert value.strip(), "a blank date is not a date"


@pytest.mark.parametrize("value", EXTREMES)
def test_exec_and_the_csv_import_refuse_bad_times_line_by_line(
    store: str, tmp_path: Path, value: str
) -> None:
    line = {"type": "record_purchase", "customer": "C-1", "order_id": "X", "amount": "1",
            "currency": "CNY", "occurred_at": value}  # fmt: skip
    result = CliRunner().invoke(main, ["--db", store, "exec", "-"], input=json.dumps(line))
    assert_valid_or_clear_error(result, f"exec {value[:40]!r}", prefix="<stdin> line 1: ")
    csv = tmp_path / "p.csv"
    with csv.open("w", encoding="utf-8", newline="") as f:
        f.write("customer_ref,order_id,amount,currency,occurred_at\n")
        f.write(f'C-1,Y,1,CNY,"{value}"\n')
    result = CliRunner().invoke(main, ["--db", store, "import", "purchases", str(csv)])
    assert_valid_or_clear_error(result, f"import {value[:40]!r}", prefix=f"{csv} line 2: ")


@pytest.mark.parametrize("version", ["0", "-1", "99999999999999999999", "9223372036854775808"])
def test_a_stream_version_out_of_range_is_a_clear_error(store: str, version: str) -> None:
    result = CliRunner().invoke(main, ["--db", store, "show", "C-1", "--version", version])
    assert result.exit_code == 1 and "stream versions run from 1" in result.stderr
