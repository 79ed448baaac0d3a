"""What every CLI command shares: the lazily opened app, error handling and output."""

from __future__ import annotations

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
        if self._app is None:
            from crm_es.app.service import CRM  # the store's stack: only commands that use it

            self._app = CRM(self.db_url, default_actor="cli")
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
