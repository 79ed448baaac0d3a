"""Every CSV the project writes is safe to open in a spreadsheet: a cell that would start a
formula (``= + - @``, tab, carriage return) gets a leading ``'``; plain numbers stay numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import click
import pytest
from click.testing import CliRunner

from crm_es import CRM
from crm_es.cli import main
from crm_es.reports.api import to_csv
from crm_es.reports.csv_cells import FORMULA_STARTS, escape_formula, spreadsheet_cell

REF = '=HYPERLINK("http://x","y")'
NAME = "@SUM(1)"
PHONE = "13800000000"


@pytest.mark.parametrize(
    ("text", "written"),
    [
        (REF, "'" + REF), (NAME, "'@SUM(1)"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-1+1", "'-1+1"), ("-", "'-"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-1e5", "'-1e5"),
        ("-12.50", "-12.50"), ("+3", "+3"), ("-.5", "-.5"), ("12", "12"), ("", ""),
        ("a=1", "a=1"), ("王芳", "王芳"), ("1e5", "1e5"), ("-１２", "'-１２"),
    ],
)  # fmt: skip
def test_a_cell_that_would_start_a_formula_gets_a_quote_and_a_plain_number_does_not(
    text: str, written: str
) -> None:
    assert escape_formula(text) == written


def test_values_that_are_not_text_keep_their_form() -> None:
    assert [spreadsheet_cell(v) for v in (-3, -1.5, Decimal("-2.5"), True, None)] == [
        -3, -1.5, Decimal("-2.5"), True, ""
    ]  # fmt: skip
    assert spreadsheet_cell(["=x"]) == '["=x"]'
    assert spreadsheet_cell(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01 00:00:00+00:00"
    assert to_csv([{"ref": REF, "amount": "-12.50", "n": -1}]) == (
        'ref,amount,n\n"\'=HYPERLINK(""http://x"",""y"")",-12.50,-1\n'
    )


def csv_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command that can write CSV (a --format option offering csv), found in the CLI."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from csv_commands(command, (*path, name))
        elif any(
            isinstance(p, click.Option)
            and isinstance(p.type, click.Choice)
            and "csv" in p.type.choices
            for p in command.params
        ):
            yield (*path, name)


# Options a command cannot run without, hostile where they may reach the output.
REQUIRED_OPTIONS = {
    ("customers", "export"): ["--campaign", "=Spring"],
    ("customers", "find"): ["--phone", PHONE],
}


def safe(cell: str) -> bool:
    return cell == escape_formula(cell) or cell.startswith("'")


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('formula') / 'crm.db'}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with CRM(url) as crm:
        crm.register_customer(
            external_ref=REF, name=NAME, region="+region", owner="-owner", tags=["=tag"], phone=PHONE,
            occurred_at=start,
        )  # fmt: skip
        crm.record_purchase(customer=REF, order_id="=O-1", amount="10", currency="CNY",
                            channel="store", occurred_at=start + timedelta(days=1))  # fmt: skip
        crm.log_contact(customer=REF, channel="phone", direction="outbound", summary="=1+1",
                        occurred_at=start + timedelta(days=2))  # fmt: skip
        crm.file_complaint(customer=REF, complaint_id="@K-1", category="=delivery",
                           severity="high", occurred_at=start + timedelta(days=3))  # fmt: skip
        crm.answer_survey(customer=REF, survey_id="-S-1", metric="csat", score=1,
                          occurred_at=start + timedelta(days=4))  # fmt: skip
        crm.change_consent(customer=REF, marketing=True, occurred_at=start + timedelta(days=5))
    return url


def test_the_walk_finds_every_command_that_writes_csv() -> None:
    found = {" ".join(p) for p in csv_commands(main)}
    assert {"history", "projections status", "report segments", "report kpi"} <= found


@pytest.mark.parametrize("path", list(csv_commands(main)), ids=" ".join)
def test_every_csv_output_escapes_cells_that_would_start_a_formula(
    hostile_store: str, path: tuple[str, ...]
) -> None:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    needs_customer = any(isinstance(p, click.Argument) and p.required for p in command.params)
    args = ["--db", hostile_store, *path, *([REF] if needs_customer else []),
            *REQUIRED_OPTIONS.get(path, []), "--format", "csv"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    if result.exit_code == 2:  # a command that offers no CSV form after all writes nothing
        assert result.stdout == "" and "Error:" in result.stderr
        return
    assert result.exit_code == 0, result.stderr
    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    unsafe = [c for c in cells if c.startswith(FORMULA_STARTS) and not safe(c)]
    assert unsafe == []
    assert not any(c.startswith(("=HYPERLINK", "@SUM")) for c in cells)
    if path in (("report", "segments"), ("customers", "export"), ("customers", "find")):
        assert "'" + REF in cells
