"""``crm-es report pipeline``: the sales opportunities as of a date, by stage and owner.

Built by the report group with the options every report shares and its ``present`` (selection,
order, formats), so it lists like the other reports: one row per (dimension, key) — overall,
each stage, each owner, each lost reason. ``--owner`` keeps that owner's row (the overall and
stage rows stay those of everyone). The report itself is imported only when the command runs,
so ``--help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from crm_es.cli.shared import Context

pass_ctx = click.make_pass_decorator(Context)

Present = Callable[[Context, str, Any, str | None, dict[str, Any]], None]


def pipeline_command(shared: Sequence[Callable[[Any], Any]], present: Present) -> click.Command:
    """The ``report pipeline`` command, with the options every report shares (``shared``:
    as-of, known-at, format, refresh, owner, sort, limit, columns)."""

    def pipeline(
        ctx: Context, as_of: str | None, known_at: str | None, fmt: str | None, refresh: bool,
        **shown: Any,
    ) -> None:  # fmt: skip
        """Sales opportunities: open count and amount per currency by stage and owner, the
        forecast weighted by each stage's win probability, win rate, mean days from opening to
        winning or losing, stage-to-stage conversion and lost reasons. Stages follow the
        store's pipeline (crm-es settings pipeline).

        \b
        Example:
          crm-es report pipeline --as-of 2026-06-30 --known-at 2026-07-01"""
        from crm_es.reports.api import Reports

        with Reports(ctx.app, refresh=refresh) as reports:
            data = reports.pipeline(as_of=as_of, known_at=known_at)
        present(ctx, "pipeline", data, fmt, shown)

    command: Callable[..., Any] = pass_ctx(pipeline)
    for option in shared:
        command = option(command)
    return click.command("pipeline")(command)
