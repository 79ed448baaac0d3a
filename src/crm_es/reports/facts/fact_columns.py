"""Columnar copies of the ``customers`` read model's fact tables, kept between reports.

A report over a million customers reads ten million purchase rows. SQLite alone needs seconds
to scan them (the bench's ``scan`` figure), more than a report may take; so the population
loaders read the tables once into numpy columns and answer every later (as of, known at) query
from memory: a cut is two integer comparisons per row, not a scan.

What is copied: purchases (customer, day, both times, amount, currency), presence, attribute
facts and each customer's external ref. Refunds and churn facts stay in SQL (few rows). Times
become microseconds since the epoch, which order as the stored fixed-width UTC texts do; customers
become codes, their rank among the ids of the presence table (every customer with an event has a
presence row), so a code order is an id order. Purchases are kept sorted by (customer, day).

Coherence: the read model changes only in the projection's transactions, which move its position
with the rows; a copy is used only while the active generation and its position are those it was
read at, read in the same snapshot as the report's (a rebuild is a new generation; an erasure
deletes rows only from personal tables, none of which is copied). On SQLite the highest rowid of
each copied table is part of the key too, against another store created at the same path. Any
change reloads the whole copy. A store that is not a file (``:memory:``), or rows outside the
layout the copy expects (ids that are not 36-character ASCII, times not in the project's UTC
layout, currencies not 3 letters), is not copied: the loaders keep their SQL path.

A query that sees merged customers (:mod:`.merges`) gets the copy as the merged views read the
tables: each duplicate's presence and purchases under its survivor's code, its attribute facts
left out (one derived copy per set of merges, kept beside the stored one).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from crm_es.projections.generations import active_generation
from crm_es.reports.facts.merges import MergedViews
from crm_es.reports.facts.purchase_scan import amounts_of, match_fixed_width, parse_days
from crm_es.store.database import Tx

__all__ = ["FactColumns", "fact_columns", "forget", "instant", "present_codes"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_ID_WIDTH: Final = 36  # a customer id is a UUID's text
_TIME_WIDTH: Final = 27  # YYYY-MM-DDTHH:MM:SS.ffffffZ, as crm_es.domain.times.iso writes it
_CURRENCY_WIDTH: Final = 3
# Below this many purchase rows the SQL path is as fast: nothing is copied (and the tests of
# small stores keep exercising it).
MIN_ROWS: Final = 50_000


class FactColumns(NamedTuple):
    """The copy of one store's ``customers`` read model. Codes index ``ids`` (sorted)."""

    ids: list[str]
    refs: list[str | None]  # external ref by code (None: no profile row)
    presence_code: IntArray
    presence_occurred: IntArray
    presence_recorded: IntArray
    attr_code: IntArray  # sorted by (attribute, customer, occurred, version)
    attr_name: IntArray  # index into attr_names
    attr_value: IntArray  # index into attr_values
    attr_occurred: IntArray
    attr_recorded: IntArray
    attr_names: list[str]
    attr_values: list[str | None]
    code: IntArray  # purchases, sorted by (customer, day)
    day: IntArray
    occurred: IntArray
    recorded: IntArray
    amount: IntArray
    currency: IntArray  # index into currencies
    currencies: list[str]

    def cut(self, as_of: str, known_at: str) -> BoolArray:
        """Purchase rows visible to a query: occurred by ``as_of``, recorded by ``known_at``."""
        mask: BoolArray = self.occurred <= instant(as_of)
        mask &= self.recorded <= instant(known_at)
        return mask

    def codes_of(self, ids: Sequence[str]) -> IntArray | None:
        """Code of each of ``ids`` (-1: unknown); None when they cannot be matched in bulk."""
        return match_fixed_width("".join(ids), _ID_WIDTH, len(ids), self.ids)


_lock = threading.Lock()
_copies: dict[tuple[Any, ...], tuple[tuple[Any, ...], FactColumns | None]] = {}
# Copies under merges, by (the stored copy's id, the merges); the stored copy is kept beside.
_merged_copies: dict[tuple[Any, ...], tuple[FactColumns, FactColumns]] = {}


def instant(text: str) -> int:
    """Microseconds since the epoch of a row time (``iso``'s layout)."""
    return int(np.datetime64(text.removesuffix("Z"), "us").astype(np.int64))


def fact_columns(tx: Tx, tables: dict[str, str]) -> FactColumns | None:
    """The copy of the read model ``tables`` belong to, as this transaction sees it (read now
    if it changed), or None where the SQL path applies."""
    views = tx.rewrite if isinstance(tx.rewrite, MergedViews) else None
    if views is None:
        return _stored_copy(tx, tables)
    stored = _stored_copy(tx, views.stored)  # the query sees merges: applied as the views do
    return None if stored is None else _merged(stored, views.merged)


def _stored_copy(tx: Tx, tables: dict[str, str]) -> FactColumns | None:
    """The copy of the tables as stored (read now if they changed), or None."""
    place = _database(tx)
    if place is None:
        return None
    active = active_generation(tx, "customers")
    if active is None:
        return None
    token: tuple[Any, ...] = (active[0], active[1], tables["purchases"])
    if not tx.postgres:
        token += tuple(
            tx.query(f"SELECT max(rowid) FROM {tables[name]}")[0][0]
            for name in ("purchases", "presence", "attribute_facts", "profile")
        )
    key = (place, tables["purchases"])
    with _lock:
        held = _copies.get(key)
    if held is not None and held[0] == token:
        return held[1]
    count = int(tx.query(f"SELECT count(*) FROM {tables['purchases']}")[0][0])
    copy = _read(tx, tables) if count >= MIN_ROWS else None
    with _lock:
        _copies[key] = (token, copy)
    return copy


def _merged(columns: FactColumns, merged: dict[str, str]) -> FactColumns | None:
    """``columns`` as :mod:`.merges`' views read the tables: each duplicate's presence and
    purchases under its survivor's code, its attribute facts left out (kept for the copy)."""
    key = (id(columns), tuple(sorted(merged.items())))
    with _lock:
        held = _merged_copies.get(key)
    if held is not None and held[0] is columns:
        return held[1]
    duplicates, survivors = columns.codes_of(list(merged)), columns.codes_of(list(merged.values()))
    if (
        duplicates is None
        or survivors is None
        or (np.concatenate([duplicates, survivors]) < 0).any()
    ):
        return None  # an id the copy does not know: the SQL path applies
    remap = np.arange(len(columns.ids), dtype=np.int64)
    remap[duplicates] = survivors
    kept = ~np.isin(columns.attr_code, duplicates)
    code = remap[columns.code]
    order = np.lexsort((columns.day, code))  # stable: (customer, day) as the copy keeps them
    copy = columns._replace(
        presence_code=remap[columns.presence_code],
        attr_code=columns.attr_code[kept], attr_name=columns.attr_name[kept],
        attr_value=columns.attr_value[kept], attr_occurred=columns.attr_occurred[kept],
        attr_recorded=columns.attr_recorded[kept],
        code=code[order], day=columns.day[order], occurred=columns.occurred[order],
        recorded=columns.recorded[order], amount=columns.amount[order],
        currency=columns.currency[order],
    )  # fmt: skip
    with _lock:
        if len(_merged_copies) > 8:
            _merged_copies.clear()
        _merged_copies[key] = (columns, copy)
    return copy


def forget() -> None:
    """Drop every copy (their memory goes; the next report reads the tables again)."""
    with _lock:
        _copies.clear()
        _merged_copies.clear()


def present_codes(columns: FactColumns, as_of: str, known_at: str) -> IntArray:
    """Codes of the customers that existed as of the query (a presence row occurred by
    ``as_of``, recorded by ``known_at``), ascending: in id order."""
    mask = columns.presence_occurred <= instant(as_of)
    mask &= columns.presence_recorded <= instant(known_at)
    seen = np.zeros(len(columns.ids), dtype=bool)
    seen[columns.presence_code[mask]] = True
    return np.flatnonzero(seen)


def _database(tx: Tx) -> tuple[Any, ...] | None:
    """Which database this is (a file, or a server's database and schema); None: not kept."""
    if tx.postgres:
        row = tx.query(
            "SELECT current_database(), current_schema(), inet_server_addr()::text, "
            "inet_server_port()"
        )[0]
        return ("postgresql", *row)
    files = [str(row[2]) for row in tx.query("PRAGMA database_list") if row[1] == "main"]
    return ("sqlite", files[0]) if files and files[0] else None


class _Layout(Exception):
    """A row outside the layout the copy expects: the SQL path applies."""


def _read(tx: Tx, tables: dict[str, str]) -> FactColumns | None:
    try:
        return _read_tables(tx, tables)
    except _Layout:
        return None


def _read_tables(tx: Tx, tables: dict[str, str]) -> FactColumns:
    ids = _id_list(tx, tables)
    refs: list[str | None] = [None] * len(ids)
    profile = tx.query(f"SELECT customer_id, external_ref FROM {tables['profile']}")
    at = _codes_joined("".join(str(r[0]) for r in profile), ids, len(profile))
    for code, (_, ref) in zip(at.tolist(), profile, strict=True):
        refs[code] = ref
    p_ids, p_occurred, p_recorded = _scan(
        tx,
        tables["presence"],
        [(c, "concat") for c in ("customer_id", "occurred_at", "recorded_at")],
    )
    p_code = _codes_joined(p_ids, ids)
    a_ids, a_occurred_text, a_recorded_text, a_names, a_values, a_versions = _scan(
        tx, tables["attribute_facts"],
        [("customer_id", "concat"), ("occurred_at", "concat"), ("recorded_at", "concat"),
         ("attribute", "json"), ("value", "json"), ("version", "json")],
    )  # fmt: skip
    a_code = _codes_joined(a_ids, ids)
    names, name_index = _factor(msgspec.json.decode(a_names))
    values, value_index = _factor(msgspec.json.decode(a_values))
    a_occurred, a_recorded = _times(a_occurred_text), _times(a_recorded_text)
    versions = np.asarray(msgspec.json.decode(a_versions, type=list[int]), dtype=np.int64)
    order = np.lexsort((versions, a_occurred, a_code, name_index))
    b_ids, b_occurred, b_recorded, b_days, b_currencies, b_amounts = _scan(
        tx, tables["purchases"],
        [("customer_id", "concat"), ("occurred_at", "concat"), ("recorded_at", "concat"),
         ("day", "days"), ("currency", "concat"), ("amount", "json")],
    )  # fmt: skip
    code = _codes_joined(b_ids, ids)
    day = parse_days(b_days)
    currencies, currency = _currency_codes(b_currencies, code.size)
    amount = amounts_of(b_amounts)
    if not code.size == day.size == amount.size:
        raise _Layout("purchase columns of one scan differ in length")
    low = int(day.min()) if day.size else 0
    span = int(day.max()) - low + 1 if day.size else 1
    by = np.argsort(code * span + (day - low), kind="stable")
    return FactColumns(
        ids, refs,
        p_code, _times(p_occurred), _times(p_recorded),
        a_code[order], name_index[order], value_index[order], a_occurred[order],
        a_recorded[order], names, values,
        code[by], day[by], _times(b_occurred)[by], _times(b_recorded)[by], amount[by],
        currency[by], currencies,
    )  # fmt: skip


def _id_list(tx: Tx, tables: dict[str, str]) -> list[str]:
    """Every customer id with a presence row, sorted (each id's code is its index)."""
    rows = tx.query(f"SELECT DISTINCT customer_id FROM {tables['presence']} ORDER BY customer_id")
    ids = [str(r[0]) for r in rows]
    joined = "".join(ids)
    if len(joined) != _ID_WIDTH * len(ids) or not joined.isascii():
        raise _Layout("customer ids")
    return ids


def _scan(tx: Tx, table: str, columns: Sequence[tuple[str, str]]) -> list[Any]:
    """One scan of ``table``, each column aggregated whole, in the same row order: "concat"
    (fixed-width texts, concatenated), "days" (comma-separated) or "json" (a JSON array; raw
    bytes of 8-byte integers for a PostgreSQL amount)."""
    pg = tx.postgres
    parts = []
    for column, kind in columns:
        if kind == "json" and column == "amount" and pg:
            parts.append("string_agg(int8send(amount), ''::bytea)")
        elif kind == "json":
            parts.append(f"json_agg({column})::text" if pg else f"json_group_array({column})")
        else:
            sep = "," if kind == "days" else ""
            parts.append(
                f"string_agg({column}, '{sep}')" if pg else f"group_concat({column}, '{sep}')"
            )
    [row] = tx.query(f"SELECT {', '.join(parts)} FROM {table}")
    return [
        ("[]" if kind == "json" else "") if v is None else v
        for v, (_, kind) in zip(row, columns, strict=True)
    ]


def _currency_codes(text: str, count: int) -> tuple[list[str], IntArray]:
    """Concatenated 3-letter currencies -> (distinct ones, sorted; each row's index)."""
    raw = text.encode("ascii") if text.isascii() else b""
    if len(raw) != _CURRENCY_WIDTH * count:
        raise _Layout("currencies")
    letters = np.frombuffer(raw, dtype=np.uint8).reshape(count, _CURRENCY_WIDTH).astype(np.int64)
    packed = (letters[:, 0] << 16) | (letters[:, 1] << 8) | letters[:, 2]
    distinct, index = np.unique(packed, return_inverse=True)
    names = [bytes([(v >> 16) & 255, (v >> 8) & 255, v & 255]).decode() for v in distinct.tolist()]
    return names, index.astype(np.int64)


def _codes_joined(joined: str, universe: list[str], count: int | None = None) -> IntArray:
    """Codes of the fixed-width ids concatenated in ``joined``; every one must be known."""
    n = len(joined) // _ID_WIDTH if count is None else count
    codes = match_fixed_width(joined, _ID_WIDTH, n, universe)
    if codes is None or (codes.size and int(codes.min()) < 0):
        raise _Layout("a fact row of a customer without a presence row")
    return codes


def _times(text: str) -> IntArray:
    """Concatenated fixed-width UTC row times -> microseconds since the epoch."""
    if not text:
        return np.zeros(0, dtype=np.int64)
    raw = text.encode("ascii", errors="strict") if text.isascii() else b""
    if not raw or len(raw) % _TIME_WIDTH:
        raise _Layout("row times")
    count = len(raw) // _TIME_WIDTH
    zulu = np.ndarray((count,), np.uint8, buffer=raw, offset=_TIME_WIDTH - 1,
                      strides=(_TIME_WIDTH,))  # fmt: skip
    if not np.all(zulu == ord("Z")):
        raise _Layout("row times")
    stamps = np.ndarray((count,), f"S{_TIME_WIDTH - 1}", buffer=raw, strides=(_TIME_WIDTH,))
    try:
        parsed = stamps.astype("datetime64[us]")
    except ValueError as e:
        raise _Layout("row times") from e
    # numpy also reads shorter forms; only the exact layout round-trips to the same text.
    if not np.array_equal(np.datetime_as_string(parsed, unit="us").astype(stamps.dtype), stamps):
        raise _Layout("row times")
    return parsed.astype(np.int64)


def _factor(values: Sequence[Any]) -> tuple[list[Any], IntArray]:
    """Distinct values (sorted, None first) and each value's index into them."""
    distinct = sorted(set(values), key=lambda v: (v is not None, v))
    index = {v: i for i, v in enumerate(distinct)}
    return distinct, np.fromiter((index[v] for v in values), np.int64, len(values))
