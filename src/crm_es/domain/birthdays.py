"""Birthdays as days in a year: the one rule for 29 February, shared by the care agenda (which
lists birthdays ahead) and the care rules (which schedule birthday greetings).

A birthday is kept as month and day only where the year of birth is not needed; a 29 February
birthday falls on **28 February** in non-leap years (:data:`LEAP_DAY_RULE`).
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Final

LEAP_DAY_RULE: Final = "02-29 birthdays fall on 02-28 in non-leap years"


def birthday_in(year: int, month_day: str) -> date:
    """The birthday ``MM-DD`` in ``year``; 02-29 becomes 02-28 in a non-leap year."""
    month, day = int(month_day[:2]), int(month_day[3:5])
    if (month, day) == (2, 29) and not calendar.isleap(year):
        day = 28
    return date(year, month, day)


def next_birthday(month_day: str, reference: date) -> date:
    """The first birthday on or after ``reference`` (this year's, else next year's)."""
    this_year = birthday_in(reference.year, month_day)
    return this_year if this_year >= reference else birthday_in(reference.year + 1, month_day)
