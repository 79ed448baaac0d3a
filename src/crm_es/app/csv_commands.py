"""The command path of the CSV import: one row (a dict of its stripped cells) at a time into its
validated commands, or the error that rejects it.

Every rule of a row is here, in the order it is checked, so its first failure is the row's
error: a blank required column, the time, the money and its currency, the business-time bounds,
then the command schema itself (msgspec, ``$.path`` and all). The columnar front end
(:mod:`crm_es.app.csv_columns`) hands every row it does not take as it is to this path, so a
rejected row reads the same whichever way the file came in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from crm_es.app.csv_format import CUSTOMER_COLUMNS, PURCHASE_COLUMNS, REQUIRED
from crm_es.app.service import utc_now
from crm_es.domain import commands as cmd
from crm_es.domain.decide.decisions import Envelope
from crm_es.domain.errors import InvalidValue
from crm_es.domain.times import moment
from crm_es.domain.values import Money


def parse_time(text: str, field: str = "occurred_at", tz: tzinfo = UTC) -> datetime:
    """A CSV time: an ISO date-time, or a bare date meaning the end of that day in the store's
    time zone ``tz``, as everywhere (see :mod:`crm_es.domain.times`) — except today, whose end
    is still to come: a bare date of today means now."""
    parsed = moment(field, text, tz=tz)
    assert parsed is not None
    now = utc_now()
    if len(text.strip()) in (8, 10) and parsed > now >= parsed - timedelta(days=1):
        return now
    return parsed


def customer_command(row: dict[str, Any], tz: tzinfo) -> cmd.Command:
    if row.get("external_ref") is None:
        raise InvalidValue("external_ref", "", "required: customers are matched by it")
    fields = {k: v for k, v in row.items() if v is not None and k in CUSTOMER_COLUMNS}
    if "tags" in fields:
        fields["tags"] = [t.strip() for t in fields["tags"].split(";") if t.strip()]
    if "occurred_at" in fields:
        fields["occurred_at"] = parse_time(fields["occurred_at"], tz=tz)
    fields["command_id"] = f"csv:customer:{fields.get('external_ref')}"
    return cmd.command_from_fields(cmd.RegisterCustomer, fields)


def order_key(cells: list[str]) -> str:
    """What identifies a purchase row without order_id: its cells (blank as ""), in the
    order of :data:`PURCHASE_COLUMNS`."""
    return "|".join(cells)


def derived_order_id(key: str, count: int) -> str:
    """The order id of the ``count``-th row (from 1) of the file identified by ``key``."""
    return "row-" + hashlib.sha256(f"{key}|{count}".encode()).hexdigest()[:24]


def purchase_command(row: dict[str, Any], seen: Counter[str], tz: tzinfo) -> cmd.Command:
    fields = {k: v for k, v in row.items() if v is not None and k in PURCHASE_COLUMNS}
    customer = fields.pop("customer_ref", None)
    at = fields.get("occurred_at")
    fields["occurred_at"] = parse_time(at, tz=tz) if at is not None else None
    if fields.get("order_id") is None:
        key = order_key([str(row.get(c) or "") for c in PURCHASE_COLUMNS])
        seen[key] += 1
        fields["order_id"] = derived_order_id(key, seen[key])
    fields["command_id"] = f"csv:purchase:{customer}:{fields['order_id']}"
    # Checked here, before anything runs, so that with --register-missing a row whose purchase
    # would be rejected does not register its customer either: a bad row stores nothing.
    Money.parse(fields.get("amount", ""), fields.get("currency", ""))
    if fields["occurred_at"] is not None:
        Envelope.for_command(cmd.Command(occurred_at=fields["occurred_at"]), utc_now(), "check")
    return cmd.command_from_fields(cmd.RecordPurchase, {"customer": customer, **fields})


def registration(ref: str, occurred_at: datetime | None) -> cmd.Command:
    """--register-missing: the registration of a purchase's customer, if still unknown (the
    ref as the row gives it, validated as built)."""
    command = cmd.RegisterCustomer(
        external_ref=ref, occurred_at=occurred_at, command_id=f"csv:customer:{ref}"
    )
    return cmd.validate_command(command)


def required(row: dict[str, Any], kind: str) -> None:
    """A required column left blank in a row is an error of that row, not "now" or nothing."""
    for column in REQUIRED[kind]:
        if row.get(column) is None:
            raise InvalidValue(column, "", "required: this column may not be blank")


def row_commands(
    kind: str, row: dict[str, Any], seen: Counter[str], register_missing: bool, tz: tzinfo
) -> list[tuple[cmd.Command, bool]]:
    """The commands of one row, each with whether it is an automatic registration; raises the
    row's error (``msgspec.ValidationError``, ``ValueError`` or ``CrmError``)."""
    required(row, kind)
    if kind == "customers":
        return [(customer_command(row, tz), False)]
    command = purchase_command(row, seen, tz)
    if not register_missing:
        return [(command, False)]
    ref = row.get("customer_ref") or ""
    return [(registration(ref, command.occurred_at), True), (command, False)]
