"""Cohort retention on arrays: customers grouped by the calendar month of their first purchase
day, counted in each month since.

For a cohort c (a month) and a period p (whole months since c, 0 = the cohort's own month):

- **customers**: the customers whose first purchase day falls in month c;
- **retained**: those of them with a purchase day in month c + p (at p = 0, all of them);
- **repeat customers**: those of them with a second distinct purchase day on or before the last
  day of month c + p (a second order on the first day is not a repeat: purchase days merge, as
  in the RFM frequency and the BG/NBD's x). It never falls as p grows.

Rates are those counts over ``customers``. A cell exists only for a month that has begun by the
last month observed; the cells of that last month count up to whatever day the days stop at.

Inputs are the distinct purchase days of each customer, as parallel arrays sorted by customer
then day (``PurchaseFacts.day_owner`` / ``day_of``); days are day numbers (days since
1970-01-01, already the calendar days of the store's time zone) and months are month numbers
(months since January 1970). Pure numpy: no Python loop per customer or per purchase day.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "CohortGrid",
    "cohort_grid",
    "cohort_status_counts",
    "month_numbers",
    "month_text",
]


def month_numbers(days: IntArray) -> IntArray:
    """The month number (months since January 1970) of each day number."""
    days = np.asarray(days, dtype=np.int64)
    if days.size > 1024:
        low, high = int(days.min()), int(days.max())
        if high - low < days.size:
            # Many days over a shorter span (ten million purchase days over a few years): the
            # months of the span's days once, then one lookup per day instead of two datetime
            # conversions (a tenth of the time).
            table = _months_of(np.arange(low, high + 1, dtype=np.int64))
            looked_up: IntArray = table[days - low]
            return looked_up
    return _months_of(days)


def _months_of(days: IntArray) -> IntArray:
    months: IntArray = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months


def month_text(month: int) -> str:
    """``YYYY-MM`` of a month number."""
    year, index = divmod(month, 12)
    return f"{1970 + year:04d}-{index + 1:02d}"


class CohortGrid(NamedTuple):
    """Cohorts (rows, oldest first: only months in which some customer bought first) by period
    (columns, 0 = the cohort's own month). Cells after the last month observed hold 0 and are
    outside ``observed``."""

    cohorts: IntArray  # month number of each cohort
    customers: IntArray  # customers per cohort
    retained: IntArray  # (cohorts, periods): with a purchase day in month cohort + period
    repeat: IntArray  # (cohorts, periods): a second purchase day by the end of that month
    observed: BoolArray  # (cohorts, periods): the month cohort + period has begun
    cohort_of: IntArray  # the cohort row of each customer of the input, -1 without a purchase

    @property
    def periods(self) -> int:
        return int(self.retained.shape[1])


def _checked(owner: IntArray, day: IntArray, customers: int) -> None:
    if owner.shape != day.shape or owner.ndim != 1:
        raise ValueError("owner and day must be 1-d arrays of the same length")
    if owner.size and (int(owner.min()) < 0 or int(owner.max()) >= customers):
        raise ValueError(f"owner indexes must lie in 0 … {customers - 1}")
    ordered = (owner[1:] > owner[:-1]) | ((owner[1:] == owner[:-1]) & (day[1:] > day[:-1]))
    if not bool(ordered.all()):
        raise ValueError("purchase days must be distinct and sorted by customer, then day")


def cohort_grid(owner: IntArray, day: IntArray, customers: int, last_month: int) -> CohortGrid:
    """The cohort grid of ``customers`` customers (indexes 0 … customers − 1) from their distinct
    purchase days ``(owner[i], day[i])``, sorted by customer then day, observed up to the month
    number ``last_month`` (a purchase day after it is an error: the caller cut the days there).
    """
    owner = np.asarray(owner, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    _checked(owner, day, customers)
    month = month_numbers(day)
    if month.size and int(month.max()) > last_month:
        raise ValueError(f"a purchase day falls after the last month observed ({last_month})")
    cohort_of = np.full(customers, -1, dtype=np.int64)
    if month.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        none = np.zeros((0, 0), dtype=np.int64)
        return CohortGrid(empty, empty, none, none, none.astype(bool), cohort_of)

    # Each customer's first day is the first of its run; each day's run is its customer's.
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    run = np.cumsum(np.r_[True, owner[1:] != owner[:-1]]) - 1
    first_month = month[starts]
    cohorts, row_of_run = np.unique(first_month, return_inverse=True)
    cohort_of[owner[starts]] = row_of_run
    width = last_month - int(cohorts[0]) + 1
    period = month - first_month[run]
    row = row_of_run[run]

    # Retained: each (customer, month) once; days are sorted, so a month's first day starts it.
    new_month = np.r_[True, (owner[1:] != owner[:-1]) | (month[1:] != month[:-1])]
    retained = np.bincount(
        row[new_month] * width + period[new_month], minlength=cohorts.size * width
    ).reshape(cohorts.size, width)

    # Repeat: counted from the month of the second day on, cumulatively.
    second = starts + 1
    has_second = second < owner.size
    has_second[has_second] = owner[second[has_second]] == owner[starts[has_second]]
    second = second[has_second]
    firsts = np.bincount(
        row[second] * width + period[second], minlength=cohorts.size * width
    ).reshape(cohorts.size, width)
    repeat = np.cumsum(firsts, axis=1)

    customers_per = np.bincount(row_of_run, minlength=cohorts.size)
    observed = cohorts[:, None] + np.arange(width)[None, :] <= last_month
    repeat[~observed] = 0
    return CohortGrid(
        cohorts.astype(np.int64),
        customers_per.astype(np.int64),
        retained.astype(np.int64),
        repeat.astype(np.int64),
        observed,
        cohort_of,
    )


def cohort_status_counts(
    cohort_of: IntArray, statuses: IntArray, cohorts: int, codes: int
) -> IntArray:
    """(cohorts, codes) counts: how many customers of each cohort row have each status code.
    ``cohort_of`` and ``statuses`` are aligned per customer; customers outside every cohort
    (row −1) are not counted."""
    cohort_of = np.asarray(cohort_of, dtype=np.int64)
    statuses = np.asarray(statuses, dtype=np.int64)
    if cohort_of.shape != statuses.shape:
        raise ValueError("cohort_of and statuses must be aligned")
    kept = cohort_of >= 0
    if statuses[kept].size and (
        int(statuses[kept].min()) < 0 or int(statuses[kept].max()) >= codes
    ):
        raise ValueError(f"status codes must lie in 0 … {codes - 1}")
    flat = np.bincount(cohort_of[kept] * codes + statuses[kept], minlength=cohorts * codes)
    counts: IntArray = flat.reshape(cohorts, codes).astype(np.int64)
    return counts
