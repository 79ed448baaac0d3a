"""What every report is asked: business time ``as_of`` and knowledge time ``known_at``.

``as_of`` D — "the world as of D": only facts that occurred up to D count. ``known_at`` T —
"what had been recorded by T". Both default to now; a report for (D, T) in the past is
reproducible forever because read models keep both times on every fact row.

``tz`` is the store's time zone: a bare date is the end of that day there, and "today" (the
reference date recency, tenure and due dates are measured to) is the day of ``as_of`` there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

import msgspec

from crm_es.domain.times import Moment, iso, moment


class ReportQuery(msgspec.Struct, frozen=True):
    as_of: datetime
    known_at: datetime
    tz: tzinfo = UTC

    @classmethod
    def at(
        cls,
        as_of: Moment = None,
        known_at: Moment = None,
        now: datetime | None = None,
        tz: tzinfo = UTC,
    ) -> ReportQuery:
        now = now or datetime.now(UTC)
        a = moment("as_of", as_of, tz=tz) or now
        k = moment("known_at", known_at, tz=tz) or now
        return cls(as_of=a, known_at=k, tz=tz)

    @property
    def as_of_iso(self) -> str:
        return iso(self.as_of)

    @property
    def known_at_iso(self) -> str:
        return iso(self.known_at)

    @property
    def reference_date(self) -> date:
        """The calendar day, in the store's time zone, recency and tenure are measured to."""
        return self.as_of.astimezone(self.tz).date()

    def cut(self, alias: str = "") -> tuple[str, tuple[str, str]]:
        """SQL condition and parameters selecting fact rows visible to this query."""
        p = f"{alias}." if alias else ""
        return f"{p}occurred_at <= ? AND {p}recorded_at <= ?", (self.as_of_iso, self.known_at_iso)
