"""What every CLI command shares: the lazily opened app, error handling and output."""

from __future__ import annotations

import math
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import click
import msgspec

from crm_es.domain.errors import CrmError

if TYPE_CHECKING:
    from crm_es.app.service import CRM


class Context:
    """Opens the store on first use, so ``--help`` never touches a database."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self._app: CRM | None = None

    @property
    def app(self) -> CRM:
        """The app over an existing store; a store that was never created is an error (a
        mistyped path must not leave an empty store behind)."""
        if self._app is None:
            from crm_es.store.settings import SETTINGS_TABLE
            from crm_es.store.url import parse_store_url, redacted, store_exists

            if not store_exists(parse_store_url(self.db_url), SETTINGS_TABLE):
                raise CrmError(
                    f"no store at {redacted(self.db_url)}: create one with `crm-es init` "
                    "(or give --db / CRM_ES_DB)"
                )
        return self.app_creating

    @property
    def app_creating(self) -> CRM:
        """The app, creating the store's tables if they are missing (init and the commands
        that write: exec, import, demo, audit import)."""
        if self._app is None:
            from crm_es.app.service import CRM  # the store's stack: only commands that use it
            from crm_es.domain.principals import admin
            from crm_es.store.url import parse_store_url

            config = parse_store_url(self.db_url)
            principal = admin("cli")  # SQLite: one user, the file is the boundary
            if config.is_postgres:  # the database session's role (crm-es roles init)
                from crm_es.store.pg_roles import principal_for_session

                principal = principal_for_session(config)
            self._app = CRM(self.db_url, principal=principal)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


class CrmGroup(click.Group):
    """Turns domain and store errors into ``Error: …`` with exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmError as e:
            raise click.ClickException(str(e)) from e
        except msgspec.ValidationError as e:
            raise click.ClickException(str(e)) from e
        except OSError as e:  # a file to read or write: missing folder, not a folder, no room
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from e
        except Exception as e:
            if not _store_error(e):
                raise
            # The store failed (down, unreachable, locked, refused a value): say so, no traceback.
            raise click.ClickException(f"store error: {type(e).__name__}: {e}") from e


def _store_error(e: Exception) -> bool:
    """An error of the store's drivers or of the library's persistence layer (checked by
    module, so that ``--help`` imports none of them)."""
    if isinstance(e, sqlite3.Error):
        return True
    module = type(e).__module__
    return module.split(".")[0] == "psycopg" or module == "eventsourcing.persistence"


_encoder = msgspec.json.Encoder()


def emit_json(data: Any) -> None:
    """One JSON document per line on stdout (UTF-8, Chinese kept readable)."""
    sys.stdout.buffer.write(_encoder.encode(data) + b"\n")
    sys.stdout.buffer.flush()


class FiniteRange(click.FloatRange):
    """A float within bounds that is a number: click's FloatRange lets ``nan`` through (every
    comparison with it is false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number
