"""Every command and group explains itself with an example; mistakes never show a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from crm_es.cli import main


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(main))


def test_the_command_tree_has_every_documented_command() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in (
        "init",
        "exec",
        "show",
        "history",
        "demo",
        "import customers",
        "import purchases",
        "projections status",
        "projections catch-up",
        "projections follow",
        "projections rebuild",
        "report segments",
        "report satisfaction",
        "report churn",
        "report agenda",
        "report kpi",
    ):
        assert expected in names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "crm-es")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"crm-es {' '.join(path)} --help shows no example"
    assert "crm-es" in result.stdout.split("Example", 1)[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show"], "Missing argument 'CUSTOMER'"),
        (["report", "segments", "--format", "xml"], "Invalid value for '--format'"),
        (["report", "churn", "--time-unit", "month"], "Invalid value for '--time-unit'"),
        (["projections", "catch-up", "nosuchmodel"], "unknown read model 'nosuchmodel'"),
        (["import", "purchases", "/no/such/file.csv"], "does not exist"),
        (["no-such-command"], "No such command"),
    ],
)
def test_user_mistakes_print_an_error_and_exit_nonzero_without_traceback(
    sqlite_url: str, args: list[str], message: str
) -> None:
    assert CliRunner().invoke(main, ["--db", sqlite_url, "init"]).exit_code == 0
    result = CliRunner().invoke(main, ["--db", sqlite_url, *args])
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_formats_behave_the_same_everywhere(sqlite_url: str) -> None:
    runner = CliRunner()
    runner.invoke(
        main,
        ["--db", sqlite_url, "exec", "-"],
        input='{"type":"register_customer","external_ref":"C-1","owner":"staff:li"}',
    )
    for args in (["report", "kpi"], ["projections", "status"], ["report", "segments"]):
        as_json = runner.invoke(main, ["--db", sqlite_url, *args, "--format", "json"])
        as_csv = runner.invoke(main, ["--db", sqlite_url, *args, "--format", "csv"])
        every_column = ["--columns", "all"] if args[0] == "report" else []
        as_table = runner.invoke(
            main, ["--db", sqlite_url, *args, "--format", "table", *every_column]
        )
        assert as_json.exit_code == as_csv.exit_code == as_table.exit_code == 0
        assert as_json.stdout.lstrip().startswith(("{", "["))
        header = as_csv.stdout.splitlines()[0].split(",")
        if "external_ref" in header:  # a table names the customer (for people only)
            header.insert(header.index("external_ref") + 1, "name")
        shown = as_table.stdout.splitlines()[0].split()
        assert shown == header[: len(shown)]  # the last ones may not fit the width
