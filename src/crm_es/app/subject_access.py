"""A data subject's access request (PIPL art. 45, GDPR art. 15): the personal data the store
holds about one customer, and who read it.

The answer gathers every place personal data lives: the customer's current state as the service
shows it (decrypted with the customer's key, through :meth:`CRM.view`), every personal value in
its history (the fields each event declares in ``PII_FIELDS``: free texts such as a contact's
summary or a reason may name the person too), and what read models copied (the tables in the
store's registry of personal tables, :mod:`crm_es.store.wipe`). Answering reads all of it, so
the answer is itself a read: it is logged (action ``subject``) before it is handed out, and the
list of reads it carries includes it. It reads through the service, so the service's policy
decides what the caller may see; it lives in the app room for that reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import UUID

import msgspec

from crm_es.app.views import PERSONAL_FIELDS, customer_view
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.personal_fields import map_personal
from crm_es.domain.policy import check_customer_read
from crm_es.store.database import Tx
from crm_es.store.wipe import PERSONAL_TABLES, create_registry

if TYPE_CHECKING:
    from crm_es.app.service import CRM

SUBJECT_ACTION: Final[Literal["subject"]] = "subject"
# Registered names are our own (rm_<model>_<table>_g<N>); anything else was written behind the
# store's back and is never put into SQL.
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def subject_access(
    app: CRM,
    customer: str | UUID,
    *,
    purpose: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Everything personal the store holds about ``customer`` and every read of it, as one
    JSON-ready object; the read is logged for ``app``'s principal first. Only a principal the
    policy lets answer subject requests may (PermissionDenied, with nothing logged, else)."""
    customer_id = customer_id_for_ref(customer)
    stored = app.store.load(customer_id)
    if stored is None:
        raise CustomerNotFound(str(customer))
    check_customer_read(app.principal, SUBJECT_ACTION, stored.owner, customer)
    # Read from the store: the policy has decided above, and this whole answer is logged once
    # as the subject read (the service's own reads would log a show and a history besides).
    current = customer_view(stored, app.clock(), app.store.timezone)
    in_history = _history_values(app, customer_id)
    copied = _read_model_rows(app, customer_id)
    fields = sorted({*PERSONAL_FIELDS, *(f for item in in_history for f in item["fields"])})
    when = at or app.clock()
    log = app.store.access_log
    log.record(app.principal.name, [customer_id], SUBJECT_ACTION, fields, purpose, when)
    return {
        "customer_id": str(customer_id),
        "external_ref": current.get("external_ref"),
        "answered_at": when.astimezone(UTC).isoformat(),
        "erased": current.get("erased", False),
        "personal_data": {
            "profile": {f: current["profile"].get(f) for f in PERSONAL_FIELDS},
            "state": current,
            "history": in_history,
            "read_models": copied,
        },
        "reads": msgspec.to_builtins(log.entries(customer_id=customer_id)),
    }


def _history_values(app: CRM, customer_id: UUID) -> list[dict[str, Any]]:
    """Each event's personal values (only the events that hold some)."""
    out = []
    for event in app.store.events.get(customer_id):
        values = map_personal(event, _same)
        if values:
            out.append(
                {
                    "version": event.originator_version,
                    "event": type(event).__name__,
                    "occurred_at": event.occurred_at.isoformat(),
                    "recorded_at": event.recorded_at.isoformat(),
                    "fields": msgspec.to_builtins(values),
                }
            )
    return out


def _same(text: str) -> str:
    return text


def _read_model_rows(app: CRM, customer_id: UUID) -> dict[str, list[dict[str, Any]]]:
    """The customer's rows in every read-model table that holds personal data."""
    db = app.store.db
    with db.transaction() as tx:
        create_registry(tx)
    found: dict[str, list[dict[str, Any]]] = {}
    with db.reading() as tx:
        names = [str(r[0]) for r in tx.query(f"SELECT name FROM {PERSONAL_TABLES} ORDER BY name")]
        for table in names:
            if not _TABLE_NAME.fullmatch(table):
                continue
            columns = _columns(tx, table)
            if "customer_id" not in columns:
                continue
            rows = tx.query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE customer_id = ?",
                (str(customer_id),),
            )
            if rows:
                found[table] = [dict(zip(columns, row, strict=True)) for row in rows]
    return found


def _columns(tx: Tx, table: str) -> list[str]:
    if tx.postgres:
        rows = tx.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position",
            (table,),
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in tx.query(f"PRAGMA table_info({table})")]
