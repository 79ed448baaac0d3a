"""``crm-es import`` reads the files people actually have: Excel's GB18030 and UTF-8 with a byte
order mark, and broken ones (an unterminated quote, a huge field, NUL bytes, extra cells, a bad
header) are errors that name the line and column, never a traceback or a row read into another."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_es import CRM
from crm_es.app.csv_rows import MAX_VALUE_LINES
from crm_es.cli import main

HEADER = "external_ref,name,region\n"


def run(url: str, path: Path, *options: str) -> tuple[int, dict[str, object] | None, str]:
    result = CliRunner().invoke(main, ["--db", url, "import", "customers", str(path), *options])
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, report, result.stderr


def names(url: str, *refs: str) -> list[str | None]:
    with CRM(url) as crm:
        return [crm.get_customer(ref).name for ref in refs]


def write(tmp_path: Path, data: bytes | str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_a_gb18030_file_as_excel_in_china_saves_it_is_detected(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, (HEADER + "C-1,王芳,华东\nC-2,李娜,华南\n").encode("gb18030"))
    code, report, err = run(sqlite_url, path)
    assert code == 0 and report is not None
    assert (report["encoding"], report["stored"]) == ("gb18030", 2)
    assert f"reading {path} as GB18030: it is not UTF-8 (byte 0xcd at offset 29, line 2)" in err
    assert names(sqlite_url, "C-1", "C-2") == ["王芳", "李娜"]


def test_utf8_with_a_byte_order_mark_reads_its_first_column(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + (HEADER + "C-1,王芳,华东\n").encode())
    code, report, err = run(sqlite_url, path)
    assert (code, err.count("line")) == (0, 0)
    assert report is not None and report["encoding"] == "utf-8"
    assert names(sqlite_url, "C-1") == ["王芳"]


def test_a_given_encoding_is_used_and_checked(sqlite_url: str, tmp_path: Path) -> None:
    gb = write(tmp_path, (HEADER + "C-1,王芳,华东\n").encode("gb18030"))
    code, report, _ = run(sqlite_url, gb, "--encoding", "GB18030")
    assert code == 0 and report is not None and report["stored"] == 1
    code, _, err = run(sqlite_url, gb, "--encoding", "utf-8")
    assert code == 1
    assert f"Error: {gb} line 2 is not utf-8 (byte 0xcd at offset 29)" in err
    code, _, err = run(sqlite_url, gb, "--encoding", "klingon")
    assert code == 1 and "Error: --encoding 'klingon': unknown encoding; give auto" in err
    code, _, err = run(sqlite_url, gb, "--encoding", "base64")
    assert code == 1 and "Error: --encoding 'base64': not a text encoding" in err


def test_a_file_neither_utf8_nor_gb18030_names_its_first_bad_byte(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, HEADER.encode() + b"C-1,Jos\xe9\xff,x\n")
    code, _, err = run(sqlite_url, path)
    assert code == 1
    assert err.startswith(f"Error: {path} is not UTF-8 (byte 0xe9 at offset 32, line 2) nor ")
    assert "give its encoding with --encoding, e.g. gb18030" in err
    utf16 = write(tmp_path, (HEADER + "C-1,x,y\n").encode("utf-16"), "u16.csv")
    code, _, err = run(sqlite_url, utf16)
    assert code == 1 and "UTF-16 byte order mark: --encoding utf-16" in err
    code, report, _ = run(sqlite_url, utf16, "--encoding", "utf-16")
    assert code == 0 and report is not None and report["stored"] == 1


def test_utf16_without_a_byte_order_mark_is_refused_at_its_header(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, (HEADER + "C-1,x,y\n").encode("utf-16-le"))
    code, _, err = run(sqlite_url, path)
    assert code == 1 and "line 1 holds NUL characters" in err and "--encoding utf-16" in err


def test_an_unterminated_quote_is_an_error_of_its_row_and_the_next_rows_are_kept(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, HEADER + 'C-1,"Wang Fang,华东\nC-2,Li,华南\nC-3,Zhao,华北\n')
    code, report, err = run(sqlite_url, path)
    assert code == 1 and report is not None
    assert (report["rows"], report["stored"], report["rejected"]) == (3, 2, 1)
    assert (
        f"{path} line 2: column 2 (name): the quote that opens its value (line 2) is not closed "
        "on that line, so the next 2 line(s) would be read into the value; they are read as "
        "rows of their own instead. Close the quote, or write a quote that is part of a value "
        'as two quotes ("")'
    ) in err
    assert names(sqlite_url, "C-2", "C-3") == ["Li", "Zhao"]


def test_a_quote_left_open_on_the_last_line_is_an_error_of_that_row(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, HEADER + 'C-1,Wang,华东\nC-2,"Li,华南')
    code, report, err = run(sqlite_url, path)
    assert code == 1 and report is not None and report["stored"] == 1
    assert f"{path} line 3: column 2 (name): the quote that opens its value is never closed" in err


def test_rows_swallowed_until_a_later_quote_closed_the_value_are_read_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    # A stray quote closed cleanly three lines on: CSV would read one row of one long name.
    text = HEADER + 'C-1,"Wang,华东\nC-2,Li,华南\nC-3,Zhao,华北\nC-4,"Sun",华中\nC-5,"Qian\n",x\n'
    code, report, err = run(sqlite_url, write(tmp_path, text))
    assert code == 1 and report is not None
    assert "line 2: column 2 (name): the quote that opens its value" in err
    assert names(sqlite_url, "C-2", "C-3", "C-4", "C-5") == ["Li", "Zhao", "Sun", "Qian"]


def test_a_value_with_a_line_break_in_quotes_is_one_value(sqlite_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + 'C-1,"Acme\nTrading",华东\nC-2,Li,华南\n')
    code, report, _ = run(sqlite_url, path)
    assert code == 0 and report is not None and report["stored"] == 2
    assert names(sqlite_url, "C-1", "C-2") == ["Acme\nTrading", "Li"]


def test_a_quote_open_for_more_lines_than_a_value_spans_is_closed_by_force(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Rows of one cell each: no line looks more like a row than a name with line breaks.
    rows = "".join(f"C-{i}\n" for i in range(2, MAX_VALUE_LINES + 10))
    path = write(tmp_path, 'external_ref\n"C-1\n' + rows)
    code, report, err = run(sqlite_url, path)
    assert code == 1 and report is not None
    assert "line 2: column 1 (external_ref): the quote that opens its value (line 2)" in err
    assert f"a value may span at most {MAX_VALUE_LINES} lines" in err
    assert report["stored"] == MAX_VALUE_LINES + 8


def test_a_field_over_the_csv_limit_is_an_error_of_its_row(sqlite_url: str, tmp_path: Path) -> None:
    for quote in ("", '"'):
        path = write(tmp_path, f"{HEADER}C-1,{quote}{'x' * 200_000}{quote},r\nC-2,Li,r\n")
        code, report, err = run(sqlite_url, path)
        assert code == 1 and report is not None and report["rejected"] == 1
        assert (
            f"{path} line 2: column 2 (name): a value of 200,000 characters, more than the "
            "131,072 a value may hold"
        ) in err
    assert names(sqlite_url, "C-2") == ["Li"]


def test_nul_bytes_extra_cells_and_text_after_a_closing_quote_are_errors_of_their_row(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        HEADER + 'C-1,a\x00b,r\nC-2,Li,r,x\nC-3,Zhao,r,,\nC-4,"Sun" Jr,r\nC-5,Qian,r\n',
    )
    code, report, err = run(sqlite_url, path)
    assert code == 1 and report is not None
    assert (report["stored"], report["rejected"]) == (2, 3)
    assert f"{path} line 2: column 2 (name): a NUL character (\\x00)" in err
    assert f"{path} line 3: 4 cells, but the header names 3 columns; quote a value" in err
    assert f"{path} line 5: column 2 (name): text after the quote that closes the value" in err
    assert names(sqlite_url, "C-3", "C-5") == ["Zhao", "Qian"]  # blank extra cells are nothing


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("external_ref,Name,foo\n", "column 2: unknown column 'Name' (did you mean 'name'?); "
         "column 3: unknown column 'foo'. Valid columns: external_ref, name, email"),
        ("external_ref,name,name\n", "column 3: 'name' again (also column 2)"),
        ("external_ref,,name\n", "column 2 has no name"),
        ("name,region\n", "missing column(s) external_ref"),
        ('external_ref,"name\n', "the header opens a quote it does not close"),
        ("\n", "line 1 is blank: the first line must be the header"),
    ],
)  # fmt: skip
def test_a_header_with_missing_unknown_duplicate_or_blank_columns_is_refused(
    sqlite_url: str, tmp_path: Path, header: str, message: str
) -> None:
    path = write(tmp_path, header + "C-1,x,y\n")
    code, report, err = run(sqlite_url, path)
    assert (code, report) == (1, None)
    assert err.splitlines()[-1].startswith(f"Error: {path} line 1")
    assert message in err


def test_blank_columns_at_the_end_of_the_header_are_ignored(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "external_ref,name,,\nC-1,Wang,,\n")
    code, report, _ = run(sqlite_url, path)
    assert code == 0 and report is not None and report["stored"] == 1


def test_an_empty_file_says_what_its_first_line_must_be(sqlite_url: str, tmp_path: Path) -> None:
    code, _, err = run(sqlite_url, write(tmp_path, ""))
    assert code == 1 and "is empty: its first line must be the header, e.g. external_ref" in err


def test_a_pipe_is_refused_as_it_cannot_be_read_twice(sqlite_url: str, tmp_path: Path) -> None:
    # The file is decoded in full before a row is stored, then parsed: a pipe (or a device such
    # as /dev/zero, which never ends) cannot be.
    fifo = tmp_path / "customers.csv"
    os.mkfifo(fifo)
    code, _, err = run(sqlite_url, fifo)
    assert code == 1 and f"Error: {fifo} is not a regular file (a pipe or a device?)" in err
