"""No traceback for any input a user can type or feed: every command and subcommand of ``crm-es``
(found by walking the click app, so a new command or option is walked too) gets hostile values
for each of its options and arguments, chosen by the parameter's type — dates, numbers, choices,
free text, files to read and files to write — plus the global ``--db`` and hostile JSON Lines for
``exec``. Each case runs on its own copy of one prepared SQLite store.

A value no command may take (``nan`` for a number, a directory for a file) must be refused: exit
status 1 or 2 and an ``Error: …`` line (or a per-line error of ``exec``/``import``). An extreme
value that may be valid (a huge integer, ``/dev/null``, a GB18030 file, an empty text) is either
taken (exit 0) or refused in the same way. Never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click
import pytest
from click.testing import CliRunner, Result

from crm_es.cli import main

# Values by kind of parameter: (refused always, taken or refused).
Values = tuple[list[str], list[str]]
DATES: Values = (
    ["yesterday", "2025-13-01", "9999-12-31T99", "0000-01-01", "2026-06-30" * 2000,
     "2026-06-30\x00"],
    [],
)  # fmt: skip
INTS: Values = (["abc", "1e309", "nan", "1.5", ""], ["-1", "0", str(10**30)])
FLOATS: Values = (["abc", "nan", "1e309", "-inf", "-1", ""], ["0", "1e-300"])
CHOICES: Values = (["nope", "", "JSON", "\x00"], [])
TEXTS: Values = ([], ["", " ", "\x00", "x" * 100_000, "\u202e\u200b", "../../etc/passwd", "-1"])
INPUTS: Values = (
    ["{dir}", "{tmp}/missing.csv"],
    ["/dev/null", "{files}/invalid-utf8.csv", "{files}/gb18030.csv", "{files}/big-field.csv",
     "{files}/unterminated.csv"],
)  # fmt: skip
# A missing directory may be created (report html does) or refused. Never /dev/null: a command
# that writes a temporary file and renames it over its --out replaces the device (as root, for
# every process on the machine) with a regular file.
OUTPUTS: Values = (
    ["{dir}", "{files}/gb18030.csv/out"],
    ["{tmp}/报告 a b.out", "{tmp}/no/such/dir/out"],
)

# What each command's required parameters get while another one is walked.
BASE = {
    "customer": "C-1",
    "reason": "a test",
    "out": "{tmp}/out.file",
    "file": "{files}/export.jsonl",
}
BASE_BY_COMMAND: dict[tuple[str, ...], dict[str, str]] = {
    ("import", "customers"): {"file": "{files}/customers.csv"},
    ("import", "purchases"): {"file": "{files}/purchases.csv"},
    ("customers", "merge"): {"duplicate": "C-2", "survivor": "C-1"},  # C-2: unknown, refused
}
STORE_URLS = (
    "", "nonsense://x", "sqlite:///{dir}", "sqlite:///{tmp}/no/such/dir/crm.db",
    "postgresql://nobody@127.0.0.1:1/x", "sqlite:///{tmp}/x.db?master_key_file={dir}",
)  # fmt: skip
# Commands that run until stopped: in a child process, stopped once they have started.
FOREVER = {("projections", "follow")}


# An error a person can act on: click's and the CLI's "Error: …", or exec's and import's
# "<source> line N: …".
CLEAR = re.compile(r"Error: |\S.* line [0-9]+: ")


class Case(NamedTuple):
    path: tuple[str, ...]
    param: str  # the option's first flag, or the argument's name
    value: str
    refused: bool  # must be refused, or may be taken

    @property
    def id(self) -> str:
        shown = self.value if len(self.value) <= 24 else f"{self.value[:12]}…({len(self.value)})"
        return f"{' '.join(self.path)} {self.param}={shown!r}"


def kind_of(param: click.Parameter) -> Values | None:
    """The hostile values for ``param`` by its type (None: a flag, which takes no value)."""
    if isinstance(param, click.Option) and param.is_flag:
        return None
    kind = param.type
    if isinstance(kind, click.File):
        return INPUTS
    if isinstance(kind, click.Path):
        return OUTPUTS if param.name == "out" else INPUTS
    if isinstance(kind, click.Choice):
        return CHOICES
    if isinstance(kind, click.types.IntParamType):
        return INTS
    if isinstance(kind, click.types.FloatParamType):
        return FLOATS
    if isinstance(param, click.Option) and param.metavar in ("D", "T"):
        return DATES
    return TEXTS


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def cases() -> Iterator[Case]:
    for path, command in commands(main):
        for param in command.params:
            values = kind_of(param)
            if values is None:
                continue
            name = param.opts[0] if isinstance(param, click.Option) else str(param.name)
            for refused, chosen in ((True, values[0]), (False, values[1])):
                for value in chosen:
                    yield Case(path, name, value, refused)
    for value in STORE_URLS:
        yield Case(("show",), "--db", value, True)


# Cases that fail in code this walk cannot fix by itself: once fixed they pass, and a strict
# xfail says to remove them from here.
KNOWN: dict[str, str] = {}


def params() -> Iterator[Any]:
    for case in cases():
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[case.id])] if case.id in KNOWN else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared store (a customer with a purchase, a complaint and a survey answer; an
    export of it) and the files the walk feeds."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "store").mkdir()
    url = f"sqlite:///{root / 'store' / 'crm.db'}"
    lines = [
        {"type": "register_customer", "external_ref": "C-1", "name": "王芳",
         "occurred_at": "2026-01-01T00:00:00+08:00"},
        {"type": "record_purchase", "customer": "C-1", "order_id": "O-1", "amount": "10",
         "currency": "CNY", "occurred_at": "2026-02-01T00:00:00+08:00"},
        {"type": "file_complaint", "customer": "C-1", "complaint_id": "K-1",
         "category": "delivery", "severity": "high", "occurred_at": "2026-02-02T00:00:00+08:00"},
        {"type": "answer_survey", "customer": "C-1", "survey_id": "S-1", "metric": "csat",
         "score": 4, "occurred_at": "2026-02-03T00:00:00+08:00"},
    ]  # fmt: skip
    feed = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert invoke(["--db", url, "exec", "-"], feed).exit_code == 0
    export = invoke(["--db", url, "audit", "export", "--out", str(root / "export.jsonl")])
    assert export.exit_code == 0, export.stderr
    (root / "customers.csv").write_text("external_ref,name\nC-2,李娜\n", encoding="utf-8")
    (root / "purchases.csv").write_text(
        "customer_ref,occurred_at,amount,currency\nC-1,2026-03-01,5,CNY\n", encoding="utf-8"
    )
    (root / "invalid-utf8.csv").write_bytes(b"external_ref,name\nC-3,\xff\xfe\xfd\n")
    (root / "gb18030.csv").write_bytes("external_ref,name\nC-4,王芳\n".encode("gb18030"))
    (root / "big-field.csv").write_text(f"external_ref,name\nC-5,{'x' * 200 * 1024}\n")
    (root / "unterminated.csv").write_text('external_ref,name\nC-6,"Wang\nC-7,Li\n')
    return root


def invoke(args: list[str], input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, args, input=input)


def arguments(case: Case, store: str, tmp: Path, files: Path) -> list[str]:
    """The command line of ``case``: its command with valid required parameters and the
    hostile value in place of the walked one."""
    command: click.Command = main
    for name in case.path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    base = {**BASE, **BASE_BY_COMMAND.get(case.path, {})}
    fill = {"tmp": tmp, "files": files, "dir": files}

    def value(param: click.Parameter, name: str) -> str | None:
        if name == case.param:
            return case.value.format(**fill)
        if param.required:
            return base[str(param.name)].format(**fill)
        return None

    args: list[str] = []
    options: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            given = value(param, str(param.name))
            args += [given] if given is not None else []
        elif not (isinstance(param, click.Option) and param.is_flag):
            given = value(param, param.opts[0])
            options += [param.opts[0], given] if given is not None else []
    db = case.value.format(**fill) if case.param == "--db" else store
    # "--" keeps a value such as "-1" an argument, not an option.
    return ["--db", db, *case.path, *options, "--", *args]


def copy_store(files: Path, tmp: Path) -> str:
    shutil.copytree(files / "store", tmp / "store")
    return f"sqlite:///{tmp / 'store' / 'crm.db'}"


def assert_clear(code: int, stderr: str, case: Case, crashed: BaseException | None) -> None:
    assert crashed is None, f"{case.id}: traceback: {crashed!r}"
    assert "Traceback" not in stderr, f"{case.id}: {stderr[-500:]}"
    if code == 0:
        assert not case.refused, f"{case.id}: taken, exit 0"
        return
    assert code in (1, 2), f"{case.id}: exit {code}"
    clear = [line for line in stderr.splitlines() if CLEAR.match(line)]
    assert clear, f"{case.id}: exit {code} without an Error line: {stderr[-300:]!r}"


@pytest.mark.parametrize("case", list(params()))
def test_a_hostile_value_is_taken_or_refused_with_an_error_never_a_traceback(
    case: Case, files: Path, tmp_path: Path
) -> None:
    args = arguments(case, copy_store(files, tmp_path), tmp_path, files)
    if case.path in FOREVER:
        code, stderr = run_until_started(args)
        assert_clear(code, stderr, case, None)
        return
    result = invoke(args)
    crashed = None if isinstance(result.exception, SystemExit | None) else result.exception
    assert_clear(result.exit_code, result.stderr, case, crashed)


def run_until_started(args: list[str]) -> tuple[int, str]:
    """Run ``crm-es args`` in a child process. A command that runs until stopped says so on its
    first line of stderr ("following …"): then it took the value, and it is stopped (SIGTERM);
    its exit status is what it answers then, or the one it ended with by itself."""
    if any("\x00" in a for a in args):
        pytest.skip("a NUL cannot be passed in a process's arguments")
    child = subprocess.Popen(
        [sys.executable, "-m", "crm_es.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stderr is not None
    guard = threading.Timer(60, child.kill)  # a child that neither starts nor ends
    guard.start()
    try:
        first = child.stderr.readline()
        if first.startswith(b"following"):
            child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        child.wait()
    finally:
        guard.cancel()
    return child.returncode, (first + rest).decode(errors="replace")


def test_the_walk_covers_every_command_and_every_parameter() -> None:
    walked = {(c.path, c.param) for c in cases()}
    for path, command in commands(main):
        for param in command.params:
            name = param.opts[0] if isinstance(param, click.Option) else str(param.name)
            flag = isinstance(param, click.Option) and param.is_flag
            assert flag or (path, name) in walked, f"{' '.join(path)} {name} is not walked"
    assert {"import customers", "exec", "report segments", "audit import"} <= {
        " ".join(path) for path, _ in commands(main)
    }


HOSTILE_LINES = {
    "invalid JSON": b'{"type": "register_customer", "external_ref": ',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge line": b'{"type":"register_customer","external_ref":"' + b"x" * (2 << 20) + b'"}',
    "unknown type": b'{"type": "register_customr", "external_ref": "C-9"}',
    "not an object": b'"register_customer"',
    "NUL": b'{"type": "register_customer", "external_ref": "C-\x00"}',
    "invalid UTF-8": b'{"type": "register_customer", "external_ref": "C-\xff"}',
    "GB18030": '{"type": "register_customer", "external_ref": "王"}'.encode("gb18030"),
    "huge number": b'{"type": "grant_points", "customer": "C-1", "points": 1' + b"0" * 400 + b"}",
    "float overflow": b'{"type": "answer_survey", "customer": "C-1", "survey_id": "S-9", '
    b'"metric": "csat", "score": 1e309}',
}


@pytest.mark.parametrize(
    "text",
    [pytest.param(t, id=n) for n, t in HOSTILE_LINES.items()],
)  # fmt: skip
@pytest.mark.parametrize("through", ["stdin", "file"])
def test_exec_answers_a_hostile_line_with_an_error_of_that_line(
    files: Path, tmp_path: Path, text: bytes, through: str
) -> None:
    store = copy_store(files, tmp_path)
    source = tmp_path / "commands.jsonl"
    source.write_bytes(text + b"\n")
    if through == "stdin":
        result = invoke(["--db", store, "exec", "-"], text + b"\n")
    else:
        result = invoke(["--db", store, "exec", str(source)])
    case = Case(("exec",), through, text[:40].decode(errors="replace"), True)
    crashed = None if isinstance(result.exception, SystemExit | None) else result.exception
    assert_clear(result.exit_code, result.stderr, case, crashed)
    assert result.exit_code == 1


def test_a_real_process_refuses_hostile_files_with_exit_1_and_no_traceback(
    files: Path, tmp_path: Path
) -> None:
    """The import of hostile files in a process of its own: what a shell sees (exit status,
    stderr), with nothing of the test runner in between."""
    store = copy_store(files, tmp_path)
    for name in ("invalid-utf8.csv", "big-field.csv", "unterminated.csv"):
        child = subprocess.run(
            [sys.executable, "-m", "crm_es.cli", "--db", store, "import", "customers",
             str(files / name)],
            capture_output=True, check=False,
        )  # fmt: skip
        err = child.stderr.decode()
        assert child.returncode == 1 and "Traceback" not in err, err[-500:]
        assert any(line.startswith(("Error: ", str(files / name))) for line in err.splitlines())
