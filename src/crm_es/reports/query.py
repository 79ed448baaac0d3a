"""What every report is asked: business time ``as_of`` and knowledge time ``known_at``.

``as_of`` D — "the world as of D": only facts that occurred up to D count. ``known_at`` T —
"what had been recorded by T". Both default to now; a report for (D, T) in the past is
reproducible forever because read models keep both times on every fact row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec

from crm_es.domain.times import iso, parse_moment


class ReportQuery(msgspec.Struct, frozen=True):
    as_of: datetime
    known_at: datetime

    @classmethod
    def at(
        cls,
        as_of: str | datetime | None = None,
        known_at: str | datetime | None = None,
        now: datetime | None = None,
    ) -> ReportQuery:
        now = now or datetime.now(UTC)
        a = parse_moment(as_of) if isinstance(as_of, str) else (as_of or now)
        k = parse_moment(known_at) if isinstance(known_at, str) else (known_at or now)
        return cls(as_of=a, known_at=k)

    @property
    def as_of_iso(self) -> str:
        return iso(self.as_of)

    @property
    def known_at_iso(self) -> str:
        return iso(self.known_at)

    @property
    def reference_date(self) -> date:
        """The calendar day (UTC) recency and tenure are measured to."""
        return self.as_of.astimezone(UTC).date()

    def cut(self, alias: str = "") -> tuple[str, tuple[str, str]]:
        """SQL condition and parameters selecting fact rows visible to this query."""
        p = f"{alias}." if alias else ""
        return f"{p}occurred_at <= ? AND {p}recorded_at <= ?", (self.as_of_iso, self.known_at_iso)
