"""Running ``crm-es`` in-process on a store, and reading its JSON Lines output."""

from __future__ import annotations

import json

from click.testing import CliRunner

from crm_es.cli import main


def run(url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--db", url, *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
