"""``crm-es projections …``: run the read models (status, catch-up, follow, rebuild)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from crm_es.cli.render import emit, format_option
from crm_es.cli.shared import Context, FiniteRange

if TYPE_CHECKING:
    from crm_es.projections.engine import Progress, ProjectionEngine

pass_ctx = click.make_pass_decorator(Context)

name_argument = click.argument("names", nargs=-1, metavar="[NAME]...")
batch_option = click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True,
    help="Events per transaction.",
)  # fmt: skip


def _engine(ctx: Context, batch_size: int = 1000) -> ProjectionEngine:
    from crm_es.domain.policy import require
    from crm_es.projections import ProjectionEngine, read_models  # only when one runs

    require(ctx.app, "projections")
    return ProjectionEngine(ctx.app, read_models(), batch_size=batch_size)


def _names(engine: ProjectionEngine, names: tuple[str, ...]) -> list[str]:
    for name in names:
        if name not in engine.models:
            known = ", ".join(engine.models)
            raise click.BadParameter(f"unknown read model {name!r} (known: {known})")
    return list(names) or list(engine.models)


@contextmanager
def _progress_bar(label: str, start: int, head: int) -> Iterator[Progress]:
    """A progress bar on stderr (click hides it when stderr is not a terminal)."""
    with click.progressbar(length=max(head - start, 1), label=label, file=sys.stderr) as bar:
        done = [start]

        def update(position: int, new_head: int) -> None:
            bar.length = max(new_head - start, 1)
            bar.update(position - done[0])
            done[0] = position

        yield update


@click.group()
def projections() -> None:
    """Run the read models: status, catch-up, follow, rebuild.

    \b
    Example:
      crm-es projections status --format table
    """


@projections.command()
@format_option
@pass_ctx
def status(ctx: Context, fmt: str) -> None:
    """Position, head and lag of every read model.

    \b
    Example:
      crm-es projections status --format table
    """
    engine = _engine(ctx)
    try:
        rows = engine.status()
    finally:
        engine.close()
    emit(rows, [{f: getattr(r, f) for f in r.__struct_fields__} for r in rows], fmt)


@projections.command("catch-up")
@name_argument
@batch_option
@pass_ctx
def catch_up(ctx: Context, names: tuple[str, ...], batch_size: int) -> None:
    """Apply every new event to the read models NAME (default: all), in batches.

    \b
    Example:
      crm-es projections catch-up customers
    """
    engine = _engine(ctx, batch_size)
    try:
        head = engine.head()
        for name in _names(engine, names):
            start = next(s.position for s in engine.status() if s.name == name)
            with _progress_bar(f"catch-up {name}", start, head) as progress:
                position = engine.catch_up(name, progress)
            click.echo(f"{name}: at {position}", err=True)
    finally:
        engine.close()


@projections.command()
@name_argument
@batch_option
@pass_ctx
def rebuild(ctx: Context, names: tuple[str, ...], batch_size: int) -> None:
    """Rebuild read models NAME (default: all) from the first event into fresh tables.

    Reports keep reading the old tables until the new ones are complete; the switch is atomic.

    \b
    Example:
      crm-es projections rebuild satisfaction
    """
    engine = _engine(ctx, batch_size)
    try:
        head = engine.head()
        chosen = _names(engine, names)
        # One pass over the events for all of them: each event is read and decoded once.
        with _progress_bar(f"rebuild {', '.join(chosen)}", 0, head) as progress:
            positions = engine.rebuild_many(chosen, progress)
        for name in chosen:
            click.echo(f"{name}: rebuilt to {positions[name]}", err=True)
    finally:
        engine.close()


@projections.command()
@name_argument
@batch_option
@click.option(
    "--poll-interval",
    type=FiniteRange(0.01, 3600),
    default=0.5,
    show_default=True,
    help="Seconds between polls (SQLite) or the longest wait for a notification.",
)
@pass_ctx
def follow(ctx: Context, names: tuple[str, ...], batch_size: int, poll_interval: float) -> None:
    """Keep read models NAME (default: all) up to date until interrupted (Ctrl-C, SIGTERM).

    \b
    Example:
      crm-es --db postgresql://postgres@127.0.0.1/crm projections follow
    """
    engine = _engine(ctx, batch_size)
    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    selected = _names(engine, names)
    click.echo(f"following {', '.join(selected)} (Ctrl-C to stop)", err=True)
    try:
        from crm_es.projections.follower import Follower

        follower = Follower(
            engine, selected, poll_interval, None, lambda m: click.echo(m, err=True)
        )
        follower.run(stop)
    finally:
        engine.close()
        click.echo("stopped", err=True)
