"""Decoding the whole-table columns of one purchases scan into numpy arrays.

:func:`crm_es.reports.facts.purchase_arrays.load_purchase_facts` asks the store for three strings
(customer ids, days, amounts) instead of a row per purchase; these functions turn them into
arrays without a Python loop per purchase, and exactly: whatever the fast paths do not expect
takes a reference path (``date.fromisoformat``, a dict of ids) with the original behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from crm_es.domain.times import day_number
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

__all__ = ["amounts_of", "match_fixed_width", "parse_days", "scan_purchase_columns"]

IntArray = npt.NDArray[np.int64]
Words = list[npt.NDArray[np.uint64]]  # columns of 64-bit words of fixed-width ids


_DAY_WIDTH: Final = 10  # YYYY-MM-DD, as read models store purchase days
_COMMA, _DASH = ord(","), ord("-")
_DIGIT_COLUMNS: Final = (0, 1, 2, 3, 5, 6, 8, 9)
_MAX_TABLE_YEARS: Final = 400  # a wider range of purchase years takes the reference parse
_NO_DAY: Final = np.iinfo(np.int64).min
_HASH_MULTIPLIER: Final = np.uint64(0x9E3779B97F4A7C15)


def scan_purchase_columns(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    currency: str,
    ids: Sequence[str],
    other: int = 0,
) -> tuple[IntArray, IntArray, IntArray]:
    """(index in ``ids`` or -1, day, amount in ``currency`` else ``other``) of every purchase
    row by the cut, from one SQL scan, in scan order."""
    cut, params = query.cut()
    pg = tx.postgres
    amount = f"CASE WHEN currency = ? THEN amount ELSE {int(other)} END"
    # Amounts: PostgreSQL sends 8-byte big-endian integers (int8send), SQLite a JSON array.
    days_and_amounts = (
        f"string_agg(day, ','), string_agg(int8send({amount}), ''::bytea)"
        if pg
        else f"group_concat(day, ','), json_group_array({amount})"
    )
    fixed = (  # bytes or characters: the same when the ids are ASCII, as the match requires
        "string_agg(customer_id, ''), MAX(octet_length(customer_id))"
        if pg
        else "group_concat(customer_id, ''), MAX(length(customer_id))"
    )
    scan = f"FROM {tables['purchases']} WHERE {cut}"
    [(joined, longest, day_text, amount_data)] = tx.query(
        f"SELECT {fixed}, {days_and_amounts} {scan}", (currency, *params)
    )
    days = parse_days(day_text or "")
    amounts = amounts_of(amount_data)
    owner = match_fixed_width(joined or "", longest or 0, days.size, ids)
    if owner is None:  # ids of several widths or not ASCII: decode them one by one
        listed = "json_agg(customer_id)::text" if pg else "json_group_array(customer_id)"
        [(id_json, day_text, amount_data)] = tx.query(
            f"SELECT {listed}, {days_and_amounts} {scan}", (currency, *params)
        )
        row_ids = msgspec.json.decode(id_json or "[]", type=list[str])
        index = {cid: i for i, cid in enumerate(ids)}
        owner = np.fromiter((index.get(cid, -1) for cid in row_ids), np.int64, len(row_ids))
        days = parse_days(day_text or "")
        amounts = amounts_of(amount_data)
    if not owner.size == days.size == amounts.size:
        raise RuntimeError("purchase columns of one scan differ in length")
    return owner, days, amounts


def amounts_of(data: bytes | str | None) -> IntArray:
    """Per-row amounts: big-endian int64 bytes (PostgreSQL) or a JSON array (SQLite)."""
    if isinstance(data, bytes):
        return np.frombuffer(data, dtype=">i8").astype(np.int64)
    return np.asarray(msgspec.json.decode(data or "[]", type=list[int]), dtype=np.int64)


def parse_days(text: str) -> IntArray:
    """Comma-separated YYYY-MM-DD days → day numbers, in order.

    Digits are read from strided views of the text and looked up in a table of every (year, month,
    day) of the years present, built with :class:`datetime.date`; so a day the table marks invalid
    (2024-02-30), or anything else out of the YYYY-MM-DD layout, takes the reference parse, which
    raises as the per-customer path does.
    """
    if not text:
        return np.zeros(0, dtype=np.int64)
    if not text.isascii() or (len(text) + 1) % (_DAY_WIDTH + 1):
        return _parse_days_slowly(text)
    raw = text.encode("ascii")
    count = (len(raw) + 1) // (_DAY_WIDTH + 1)

    def column(offset: int, rows: int = count) -> npt.NDArray[np.uint8]:
        view = np.ndarray((rows,), np.uint8, buffer=raw, offset=offset, strides=(_DAY_WIDTH + 1,))
        return view

    digits = [column(offset) - np.uint8(ord("0")) for offset in _DIGIT_COLUMNS]
    layout_ok = (
        all(np.all(d < 10) for d in digits)  # uint8: anything but 0-9 wraps to >= 10
        and np.all(column(4) == _DASH)
        and np.all(column(7) == _DASH)
        and np.all(column(_DAY_WIDTH, count - 1) == _COMMA)
    )
    if not layout_ok:
        return _parse_days_slowly(text)
    y0, y1, y2, y3, m0, m1, d0, d1 = (d.astype(np.int32) for d in digits)
    year = y0 * 1000 + y1 * 100 + y2 * 10 + y3
    month, day = m0 * 10 + m1, d0 * 10 + d1
    first_year, last_year = int(year.min()), int(year.max())
    if last_year - first_year > _MAX_TABLE_YEARS or not (
        np.all((month >= 1) & (month <= 12)) and np.all((day >= 1) & (day <= 31))
    ):
        return _parse_days_slowly(text)
    table = _day_table(first_year, last_year)
    numbers: IntArray = table[(year - first_year) * 372 + (month - 1) * 31 + (day - 1)]
    if np.any(numbers == _NO_DAY):
        return _parse_days_slowly(text)
    return numbers


def _day_table(first_year: int, last_year: int) -> IntArray:
    """Day number of each (year, month 1-12, day 1-31) from ``first_year``; _NO_DAY if invalid."""
    table = np.full((last_year - first_year + 1) * 372, _NO_DAY, dtype=np.int64)
    for year in range(max(first_year, 1), last_year + 1):
        base = (year - first_year) * 372
        for month in range(1, 13):
            start = day_number(date(year, month, 1))
            following = date(year, month + 1, 1) if month < 12 else date(year, 12, 31)
            length = (following - date(year, month, 1)).days + (month == 12)
            at = base + (month - 1) * 31
            table[at : at + length] = np.arange(start, start + length)
    return table


def _parse_days_slowly(text: str) -> IntArray:
    """The reference parse (``date.fromisoformat``), for anything the fast path does not expect."""
    days = text.split(",")
    return np.fromiter((day_number(date.fromisoformat(d)) for d in days), np.int64, len(days))


def match_fixed_width(joined: str, longest: int, count: int, ids: Sequence[str]) -> IntArray | None:
    """Index in ``ids`` of each of the ``count`` ids concatenated in ``joined``, -1 if absent.

    ``longest`` is the longest of them: when ``joined`` is ``count`` times as long (in ASCII), every
    id has that width. Ids become rows of 64-bit words, hashed to one word each. A table of 8 slots
    per id, indexed by the top bits of the hash, gives each row its candidate in one look-up (ids
    sharing a slot are found by searching the sorted hashes), and every candidate is confirmed by
    comparing the words, so the match is exact. (A million dict look-ups, or a binary search each,
    cost several times more: in scan order they miss the CPU caches.) None when this does not
    apply: ids of several widths, not ASCII, or two of ``ids`` with the same hash.
    """
    width = longest
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if width <= 0 or len(joined) != width * count or not joined.isascii():
        return None
    rows = _id_words(joined.encode("ascii"), width)
    everyone = "".join(ids)
    uniform = len(ids) > 0 and len(everyone) == width * len(ids) and min(map(len, ids)) == width
    if uniform and everyone.isascii():
        candidates = np.arange(len(ids), dtype=np.int64)  # the usual case: all ids are UUIDs
    else:
        fit = [i for i, cid in enumerate(ids) if len(cid) == width and cid.isascii()]
        candidates = np.array(fit, dtype=np.int64)
        everyone = "".join([ids[i] for i in fit])
    if not candidates.size:
        return np.full(count, -1, dtype=np.int64)
    known = [np.ascontiguousarray(words) for words in _id_words(everyone.encode("ascii"), width)]
    known_hashes = _id_hashes(known)
    order = np.argsort(known_hashes)
    hashes = known_hashes[order]
    if np.any(hashes[1:] == hashes[:-1]):
        return None
    shift = np.uint64(64 - (8 * len(hashes)).bit_length())
    slots = (hashes >> shift).astype(np.int64)
    first = np.ones(len(slots), dtype=bool)
    np.not_equal(slots[1:], slots[:-1], out=first[1:])
    owner_of_slot = np.full(1 << (64 - int(shift)), -1, dtype=np.int64)
    owner_of_slot[slots[first]] = order[first]
    shared = np.zeros(len(owner_of_slot), dtype=bool)
    shared[slots[~first]] = True
    row_hashes = _id_hashes(rows)
    row_slots = (row_hashes >> shift).astype(np.int64)
    at = owner_of_slot[row_slots]
    crowded = shared[row_slots]
    if crowded.any():
        found = np.searchsorted(hashes, row_hashes[crowded])
        at[crowded] = order[np.minimum(found, len(order) - 1)]
    at_known = np.maximum(at, 0)
    same = at >= 0
    for row_words, known_words in zip(rows, known, strict=True):
        same &= row_words == known_words[at_known]
    return np.where(same, candidates[at_known], -1)


def _id_words(raw: bytes, width: int) -> Words:
    """Fixed-width ids as columns of 64-bit words that together cover every byte of each id.

    Views of ``raw``, not copies: one word every 8 bytes, the last one ending with the id (it may
    overlap the one before). Ids shorter than a word are zero-padded into one.
    """
    count = len(raw) // width
    if width < 8:
        padded = np.zeros((count, 8), dtype=np.uint8)
        padded[:, :width] = np.frombuffer(raw, dtype=np.uint8).reshape(count, width)
        return [padded.view("<u8")[:, 0]]
    offsets = [*range(0, width - 7, 8)]
    if offsets[-1] != width - 8:
        offsets.append(width - 8)
    return [
        np.ndarray((count,), dtype="<u8", buffer=raw, offset=offset, strides=(width,))
        for offset in offsets
    ]


def _id_hashes(words: Words) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of the first and the last word: enough to spread ids (UUIDs, or counters
    behind a common prefix) over the slots; matches are confirmed on every word anyway."""
    hashes = np.zeros(len(words[0]), dtype=np.uint64)
    for column in (words[0], words[-1]) if len(words) > 1 else words:
        hashes ^= column
        hashes *= _HASH_MULTIPLIER
        hashes ^= hashes >> np.uint64(29)
    return hashes
