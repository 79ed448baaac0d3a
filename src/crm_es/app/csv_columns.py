"""The columnar front end of the CSV import: a block of rows, held as columns, checked column by
column and turned into commands with as little work per row as the result allows.

Each field is checked with its own type from the command schema (``msgspec.convert`` of the
field's Annotated type: the same patterns, lengths and enums, once per distinct value where
values repeat), after the same Unicode NFC the command path applies. The rules outside the
schema are checked on columns too: required columns, the money's format and its currency's
scale, times (a bare date is the end of that day in the store's zone, a bare date of today
means now) and the business-time bounds. A row is built here only when the command path would
accept it as it is; every other row gets None and takes the command path
(:mod:`crm_es.app.csv_commands`), which builds its command or its error exactly as before, so an
error message cannot differ. Either way a row becomes the same command.
"""

from __future__ import annotations

import re
import typing
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, time, tzinfo
from functools import partial
from typing import Any, Final

import msgspec

from crm_es.app.csv_commands import derived_order_id, order_key, registration
from crm_es.app.csv_format import CUSTOMER_COLUMNS, PURCHASE_COLUMNS, REQUIRED
from crm_es.app.csv_rows import RecordBlock
from crm_es.app.service import utc_now
from crm_es.domain import commands as cmd
from crm_es.domain.decide.envelope import EARLIEST_BUSINESS_TIME, FUTURE_SKEW
from crm_es.domain.errors import CrmError
from crm_es.domain.times import FIRST_DAY, LAST_DAY, moment
from crm_es.domain.values import CURRENCY_EXPONENTS, MAX_MINOR_UNITS

_Counts = tuple[dict[int, str], dict[str, int]]  # row -> its content; content -> count

Built = list[tuple[cmd.Command, bool]] | None
"""A row's commands, each with whether it is an automatic registration; None: the row takes
the command path."""

# An amount taken here has at most as many decimals as its currency and few enough digits to
# stay under MAX_MINOR_UNITS, so Money.parse takes it as it is; a subset of the schema's money
# pattern. Others ("1.500" CNY and "100.0" JPY are valid too) take the command path.
_INTEGER_DIGITS: Final = len(str(MAX_MINOR_UNITS)) - 1 - max(CURRENCY_EXPONENTS.values())
_AMOUNTS: Final = {
    exponent: re.compile(
        f"(?:0|[1-9][0-9]{{0,{_INTEGER_DIGITS - 1}}})"
        + (f"(?:\\.[0-9]{{1,{exponent}}})?" if exponent else "")
    ).fullmatch
    for exponent in set(CURRENCY_EXPONENTS.values())
}
# Distinct values of a repetitive column whose check is remembered between blocks.
_REMEMBER: Final = 100_000
# A bare date as times.moment reads it (2026-01-31 or 20260131).
_BARE_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}").fullmatch
# The instants moment() takes, cut to whole days inside its range (its edges: command path).
_FIRST: Final = datetime.combine(FIRST_DAY, time(), UTC)
_LAST: Final = datetime.combine(LAST_DAY, time(), UTC)


class FieldCheck:
    """One field of a command class, checked as the schema checks it when the command is built."""

    def __init__(self, command_type: type[cmd.Command], field: str, remember: int = 0) -> None:
        self.type: Any = typing.get_type_hints(command_type, include_extras=True)[field]
        self._list: Any = list[self.type]  # type: ignore[name-defined]
        # Values taken in earlier blocks, checked once (a customer's ref recurs on every one
        # of its purchases): up to ``remember`` of them, then forgotten all at once.
        self._remember, self._known = remember, dict[str, Any]()

    def one(self, value: object) -> tuple[bool, Any]:
        """(whether the schema takes ``value``, what it makes of it)."""
        try:
            return True, msgspec.convert(value, self.type)
        except msgspec.ValidationError:
            return False, None

    def many(self, values: Iterable[str]) -> tuple[dict[str, Any], set[str]]:
        """(what the schema makes of each distinct value it takes, the values it refuses); the
        first may hold more values than were asked about (remembered ones)."""
        if not self._remember:
            return self._convert(list(set(values)))
        known = self._known
        if len(known) > self._remember:
            known.clear()
        made, refused = self._convert(list(set(values) - known.keys()))
        known.update(made)
        return known, refused

    def _convert(self, distinct: list[str]) -> tuple[dict[str, Any], set[str]]:
        try:
            return dict(zip(distinct, msgspec.convert(distinct, self._list), strict=True)), set()
        except msgspec.ValidationError:  # which ones (a refused value is a rejected row)
            checked = {value: self.one(value) for value in distinct}
            made = {value: made for value, (ok, made) in checked.items() if ok}
            return made, set(distinct) - made.keys()


def nfc_column(values: list[str]) -> list[str]:
    """The values in Unicode NFC, as the command path takes every text (ASCII as it is)."""
    return values if "".join(values).isascii() else list(map(cmd.nfc, values))


class Times:
    """A time column read as :func:`crm_es.app.csv_commands.parse_time` reads each value, kept
    where it falls inside ``[lower, upper]`` (the command's business-time bounds); None for
    any other value and for a bare date whose day is not over (which means now, or is in the
    future): their rows take the command path."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._days: dict[str, datetime | None] = {}  # bare dates repeat: each parsed once

    def column(self, texts: list[str], lower: datetime, upper: datetime) -> list[datetime | None]:
        # moment() reads a Z as +00:00; parse_time's rule looks at the text as written.
        given = [t.replace("Z", "+00:00") for t in texts] if "Z" in "".join(texts) else texts
        out: list[datetime | None] = []
        fromisoformat, tz, day = datetime.fromisoformat, self.tz, self._day
        over = min(upper, utc_now())  # a bare date's day must be over by now
        for text, iso in zip(texts, given, strict=True):
            if len(text) in (8, 10):  # a bare date (parse_time's "today means now" rule)
                out.append(day(text, lower, over))
                continue
            try:
                parsed = fromisoformat(iso)
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=tz)
                out.append(parsed if lower <= parsed <= upper else None)
            except (ValueError, TypeError, OverflowError):
                out.append(None)
        return out

    def _day(self, text: str, lower: datetime, upper: datetime) -> datetime | None:
        if text not in self._days:
            parsed = None
            if _BARE_DATE(text):
                try:
                    parsed = moment("occurred_at", text, tz=self.tz)
                except CrmError:
                    parsed = None
            self._days[text] = parsed
        parsed = self._days[text]
        return parsed if parsed is not None and lower <= parsed <= upper else None


class _Block:
    """One block's columns and the rows that take the command path."""

    def __init__(self, block: RecordBlock) -> None:
        self.block, self.size = block, len(block.lines)
        self.slow: set[int] = set()

    def column(self, name: str) -> list[str]:
        return self.block.columns.get(name) or [""] * self.size

    def refuse(self, values: list[Any], refused: set[Any]) -> None:
        """Rows holding one of the ``refused`` values take the command path (looked for row by
        row only when there is one)."""
        if not refused.isdisjoint(values):
            self.slow.update(i for i, value in enumerate(values) if value in refused)

    def optional(self, name: str, check: FieldCheck) -> list[Any]:
        """An optional column as the schema makes its values (None where blank)."""
        values = nfc_column(self.column(name))
        made, refused = check.many(v for v in values if v)
        self.refuse(values, refused)
        return [made.get(v) if v else None for v in values]


class PurchaseFileColumns:
    """Blocks of a purchases file into ``RecordPurchase`` commands (and registrations)."""

    _OPTIONAL: Final = ("channel", "product_category", "staff")

    def __init__(self, names: list[str], tz: tzinfo, seen: Counter[str], register: bool):
        self.names, self.times, self.seen, self.register = names, Times(tz), seen, register
        check = partial(FieldCheck, cmd.RecordPurchase)
        self.order_id, self.command_id = check("order_id"), check("command_id")  # unique
        self.customer, self.currency = check("customer", _REMEMBER), check("currency", 100)
        self.optional = {name: check(name, _REMEMBER) for name in self._OPTIONAL if name in names}

    def commands(self, block: RecordBlock) -> list[Built]:
        b = _Block(block)
        for name in REQUIRED["purchases"]:
            b.refuse(b.column(name), {""})
        raw_customers = b.column("customer_ref")
        customers = nfc_column(raw_customers)
        b.refuse(customers, self.customer.many(customers)[1])
        upper = utc_now() + FUTURE_SKEW
        times = self.times.column(b.column("occurred_at"), EARLIEST_BUSINESS_TIME, upper)
        b.refuse(times, {None})
        amounts, currencies = b.column("amount"), b.column("currency")
        self._money(b, amounts, currencies)
        optional = {name: b.optional(name, check) for name, check in self.optional.items()}
        raw_orders = b.column("order_id")
        if "order_id" in self.names:
            given = nfc_column(raw_orders)
            b.refuse(given, self.order_id.many(o for o in given if o)[1])
        registrations: dict[int, cmd.Command] = {}
        if self.register:
            registrations = self._registrations(b, raw_customers, times)
        raw_orders, counts = self._derive_orders(b, raw_orders)
        orders = nfc_column(raw_orders)
        ids = nfc_column(list(map("csv:purchase:{}:{}".format, raw_customers, raw_orders)))
        self._command_ids(b, ids, counts)
        out: list[Built] = []
        slow, purchase = b.slow, cmd.RecordPurchase
        rows = zip(customers, orders, amounts, currencies, times, ids, strict=True)
        for i, (customer, order, amount, currency, at, command_id) in enumerate(rows):
            if i in slow:
                out.append(None)
                continue
            fields = {n: v[i] for n, v in optional.items() if v[i] is not None} if optional else {}
            command = purchase(
                customer=customer,
                order_id=order,
                amount=amount,
                currency=currency,
                occurred_at=at,
                command_id=command_id,
                **fields,
            )
            out.append(
                [(registrations[i], True), (command, False)]
                if registrations
                else [(command, False)]
            )
        return out

    def _money(self, b: _Block, amounts: list[str], currencies: list[str]) -> None:
        """Money.parse takes the amount in its currency as it is."""
        exponents = {
            currency: CURRENCY_EXPONENTS[currency]
            for currency in set(currencies)
            if currency in CURRENCY_EXPONENTS and self.currency.one(currency)[0]
        }
        if len(set(currencies)) == 1 and exponents:  # one currency: one pattern, mapped in C
            match = _AMOUNTS[next(iter(exponents.values()))]
            b.refuse(list(map(match, amounts)), {None})
            return
        for i, (amount, currency) in enumerate(zip(amounts, currencies, strict=True)):
            exponent = exponents.get(currency)
            if exponent is None or _AMOUNTS[exponent](amount) is None:
                b.slow.add(i)

    @staticmethod
    def _registrations(
        b: _Block, refs: list[str], times: list[datetime | None]
    ) -> dict[int, cmd.Command]:
        """--register-missing: each row's registration, validated as the command path does."""
        out: dict[int, cmd.Command] = {}
        for i, (ref, at) in enumerate(zip(refs, times, strict=True)):
            if i not in b.slow:
                try:
                    out[i] = registration(ref, at)
                except msgspec.ValidationError:
                    b.slow.add(i)
        return out

    def _derive_orders(self, b: _Block, orders: list[str]) -> tuple[list[str], _Counts]:
        """Rows without order_id are identified by their content and how many identical rows
        came before, counted in the file's ``seen`` as the command path counts. Counted only
        tentatively here (:meth:`_command_ids` may still send a row to the command path, which
        counts it itself): the content of each such row and its content's count so far."""
        keys: dict[int, str] = {}
        counts: dict[str, int] = {}
        if all(orders):
            return orders, (keys, counts)
        out = list(orders)
        columns = [b.column(name) for name in PURCHASE_COLUMNS]
        seen = self.seen
        for i, cells in enumerate(zip(*columns, strict=True)):
            if orders[i] or i in b.slow:
                continue
            key = keys[i] = order_key(list(cells))
            count = counts[key] = (counts.get(key) or seen.get(key, 0)) + 1
            out[i] = derived_order_id(key, count)
        return out, (keys, counts)

    def _command_ids(self, b: _Block, ids: list[str], counts: _Counts) -> None:
        """Ids the schema refuses send their rows to the command path, with every row identical
        to one of them (so the rows of one content are all counted in one place); the counts
        of the derived ids that stay are kept."""
        keys, by_key = counts
        refused_ids = self.command_id.many(ids)[1]
        refused = set()
        if not refused_ids.isdisjoint(ids):
            refused = {i for i, c in enumerate(ids) if c in refused_ids and i not in b.slow}
        if refused and keys:
            contents = {keys[i] for i in refused if i in keys}
            refused.update(i for i, key in keys.items() if key in contents)
        b.slow.update(refused)
        for i, key in keys.items():
            if i not in b.slow:
                self.seen[key] = by_key[key]


class CustomerFileColumns:
    """Blocks of a customers file into ``RegisterCustomer`` commands."""

    _PLAIN: Final = tuple(
        c for c in CUSTOMER_COLUMNS if c not in ("external_ref", "tags", "occurred_at")
    )

    def __init__(self, names: list[str], tz: tzinfo) -> None:
        self.names, self.times = names, Times(tz)
        check = partial(FieldCheck, cmd.RegisterCustomer)
        self.external_ref, self.command_id, self.tags = map(
            check, ("external_ref", "command_id", "tags")
        )
        self.plain = {name: check(name, _REMEMBER) for name in self._PLAIN if name in names}

    def commands(self, block: RecordBlock) -> list[Built]:
        b = _Block(block)
        raw_refs = b.column("external_ref")
        b.refuse(raw_refs, {""})
        refs = nfc_column(raw_refs)
        b.refuse(refs, self.external_ref.many(refs)[1])
        fields = {name: b.optional(name, check) for name, check in self.plain.items()}
        if "tags" in self.names:
            fields["tags"] = self._tags(b)
        if "occurred_at" in self.names:
            texts = b.column("occurred_at")
            times = self.times.column(texts, _FIRST, _LAST)
            if None in times:  # a blank time is none (the default), not refused
                b.slow.update(i for i, t in enumerate(texts) if t and times[i] is None)
            fields["occurred_at"] = times
        ids = nfc_column(["csv:customer:" + ref for ref in raw_refs])
        b.refuse(ids, self.command_id.many(ids)[1])
        out: list[Built] = []
        for i in range(b.size):
            if i in b.slow:
                out.append(None)
                continue
            given = {name: values[i] for name, values in fields.items() if values[i] is not None}
            command = cmd.RegisterCustomer(external_ref=refs[i], command_id=ids[i], **given)
            out.append([(command, False)])
        return out

    def _tags(self, b: _Block) -> list[list[str] | None]:
        """Tags separated by ';', each stripped, blanks dropped (not in NFC: the command path
        leaves a list as it is), checked as the schema's list of ids."""
        cells = b.column("tags")
        made: dict[str, list[str] | None] = {}
        for cell in set(cells):
            if cell:
                tags = [t.strip() for t in cell.split(";") if t.strip()]
                ok, value = self.tags.one(tags)
                made[cell] = value if ok else None
        b.refuse(cells, {c for c, value in made.items() if value is None})
        return [made.get(c) if c else None for c in cells]
