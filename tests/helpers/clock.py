"""A recorded-time clock a test moves by hand."""

from __future__ import annotations

from datetime import datetime


class Clock:
    """A recorded-time clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
