"""Times in read-model rows: fixed-width UTC ISO strings, so text order is time order on both
stores and ``--as-of`` / ``--known-at`` filters are plain string comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import msgspec


def iso(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat is C code and, with timespec, fixed width: 10x faster than strftime here.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def iso_many(moments: Sequence[datetime]) -> list[str]:
    """``[iso(m) for m in moments]``, ~10x faster: msgspec formats the whole list in C.

    msgspec writes RFC 3339 with ``Z`` for UTC and leaves out a zero fraction, so a UTC time is
    27 characters (20 without a fraction); any other length is another offset or a naive time,
    formatted by :func:`iso`.
    """
    out: list[str] = msgspec.to_builtins(moments)
    if set(map(len, out)) <= {27}:
        return out
    for i, text in enumerate(out):
        if len(text) == 20 and text[19] == "Z":
            out[i] = text[:19] + ".000000Z"
        elif len(text) != 27:
            out[i] = iso(moments[i])
    return out


def day(moment: datetime, tz: tzinfo = UTC) -> str:
    """The calendar day of ``moment`` in the store's time zone (purchase days merge on it)."""
    return moment.astimezone(tz).date().isoformat()


def parse_moment(text: str, tz: tzinfo = UTC) -> datetime:
    """A CLI/API time: a bare date means the END of that day (inclusive) in ``tz``;
    a date-time with an offset means that instant; a naive date-time is read in ``tz``."""
    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime.combine(d + timedelta(days=1), time(), tz) - timedelta(microseconds=1)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
