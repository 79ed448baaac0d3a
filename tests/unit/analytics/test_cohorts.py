"""Cohort retention on arrays: hand-computed grids, month numbers, the inputs refused, and a
literal per-customer recount on random histories."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from crm_es.analytics.cohorts import (
    cohort_grid,
    cohort_status_counts,
    month_numbers,
    month_text,
)

IntArray = npt.NDArray[np.int64]


def day(text: str) -> int:
    return date.fromisoformat(text).toordinal() - date(1970, 1, 1).toordinal()


def month(text: str) -> int:
    return (int(text[:4]) - 1970) * 12 + int(text[5:7]) - 1


def pairs(*history: tuple[int, str]) -> tuple[IntArray, IntArray]:
    owner = np.array([o for o, _ in history], dtype=np.int64)
    days = np.array([day(d) for _, d in history], dtype=np.int64)
    return owner, days


# Customer 0: January cohort, bought again on 20 January (a repeat in its own month) and in
# March. Customer 1: the last day of January, then 1 February. Customer 2: February once.
# Customer 3: the last day of February, then twice in April. Customer 4 never bought.
HISTORY = pairs(
    (0, "2026-01-05"), (0, "2026-01-20"), (0, "2026-03-02"),
    (1, "2026-01-31"), (1, "2026-02-01"),
    (2, "2026-02-10"),
    (3, "2026-02-28"), (3, "2026-04-01"), (3, "2026-04-15"),
)  # fmt: skip


def test_month_numbers_count_calendar_months_since_january_1970() -> None:
    days = np.array([day(d) for d in ("1970-01-01", "1970-01-31", "1970-02-01", "1969-12-31",
                                      "2026-01-31", "2024-02-29")])  # fmt: skip
    assert month_numbers(days).tolist() == [0, 0, 1, -1, 672, 649]
    assert [month_text(m) for m in (0, 1, -1, 672, 649, 11)] == [
        "1970-01", "1970-02", "1969-12", "2026-01", "2024-02", "1970-12",
    ]  # fmt: skip


def test_the_grid_counts_retained_and_repeat_customers_by_hand() -> None:
    grid = cohort_grid(*HISTORY, customers=5, last_month=month("2026-04"))
    assert [month_text(m) for m in grid.cohorts.tolist()] == ["2026-01", "2026-02"]
    assert grid.customers.tolist() == [2, 2]
    # January: both in January, customer 1 in February, customer 0 in March, nobody in April.
    # February: both in February, nobody in March, customer 3 in April (twice: counted once);
    # its fourth month (May) has not begun.
    assert grid.retained.tolist() == [[2, 1, 1, 0], [2, 0, 1, 0]]
    # Customer 0 repeats in January (a second day in its own month), customer 1 in February;
    # customer 3 in April, customer 2 never.
    assert grid.repeat.tolist() == [[1, 2, 2, 2], [0, 0, 1, 0]]
    assert grid.observed.tolist() == [[True] * 4, [True, True, True, False]]
    assert grid.cohort_of.tolist() == [0, 0, 1, 1, -1]
    assert grid.periods == 4


def test_months_without_a_first_purchase_have_no_cohort_row() -> None:
    grid = cohort_grid(*pairs((0, "2026-01-10"), (1, "2026-03-10")), 2, month("2026-03"))
    assert [month_text(m) for m in grid.cohorts.tolist()] == ["2026-01", "2026-03"]
    assert grid.retained.tolist() == [[1, 0, 0], [1, 0, 0]]
    assert grid.observed.tolist() == [[True, True, True], [True, False, False]]


def test_a_history_without_purchases_has_an_empty_grid() -> None:
    empty = np.zeros(0, dtype=np.int64)
    grid = cohort_grid(empty, empty, customers=3, last_month=month("2026-04"))
    assert grid.cohorts.size == 0 and grid.retained.shape == (0, 0)
    assert grid.cohort_of.tolist() == [-1, -1, -1]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (pairs((1, "2026-01-05"), (0, "2026-01-06")), "sorted by customer"),
        (pairs((0, "2026-01-06"), (0, "2026-01-05")), "sorted by customer"),
        (pairs((0, "2026-01-05"), (0, "2026-01-05")), "distinct"),
        (pairs((0, "2026-05-01")), "after the last month"),
        (pairs((7, "2026-01-05")), "owner indexes"),
    ],
)
def test_inputs_the_grid_cannot_count_are_refused(
    history: tuple[IntArray, IntArray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cohort_grid(*history, customers=5, last_month=month("2026-04"))


def test_status_counts_are_per_cohort_row_leaving_out_customers_outside_every_cohort() -> None:
    counts = cohort_status_counts(
        np.array([0, 0, 1, -1, 1]), np.array([1, 3, 2, 0, 2]), cohorts=2, codes=4
    )
    assert counts.tolist() == [[0, 1, 0, 1], [0, 0, 2, 0]]
    with pytest.raises(ValueError, match="status codes"):
        cohort_status_counts(np.array([0]), np.array([4]), cohorts=1, codes=4)


def _recount(
    owner: IntArray, days: IntArray, last_month: int
) -> tuple[list[int], list[int], dict[tuple[int, int], tuple[int, int]]]:
    """The grid counted customer by customer, month by month, from their dates."""
    by_customer: dict[int, list[date]] = {}
    for o, d in zip(owner.tolist(), days.tolist(), strict=True):
        by_customer.setdefault(o, []).append(date.fromordinal(d + date(1970, 1, 1).toordinal()))

    def number(d: date) -> int:
        return (d.year - 1970) * 12 + d.month - 1

    cohorts = sorted({number(ds[0]) for ds in by_customer.values()})
    sizes = [sum(number(ds[0]) == c for ds in by_customer.values()) for c in cohorts]
    cells: dict[tuple[int, int], tuple[int, int]] = {}
    for row, c in enumerate(cohorts):
        members = [ds for ds in by_customer.values() if number(ds[0]) == c]
        for p in range(last_month - c + 1):
            retained = sum(any(number(d) == c + p for d in ds) for ds in members)
            repeat = sum(len(ds) >= 2 and number(ds[1]) <= c + p for ds in members)
            cells[(row, p)] = (retained, repeat)
    return cohorts, sizes, cells


def test_the_grid_equals_a_literal_recount_on_random_histories() -> None:
    rng = np.random.default_rng(19)
    customers, start, span = 300, day("2024-01-01"), 800
    owners, days = [], []
    for o in range(customers):
        picked = np.unique(rng.integers(start, start + span, rng.integers(0, 9)))
        owners += [o] * picked.size
        days += picked.tolist()
    owner, when = np.array(owners, dtype=np.int64), np.array(days, dtype=np.int64)
    last = int(month_numbers(np.array([start + span]))[0])
    grid = cohort_grid(owner, when, customers, last)
    cohorts, sizes, cells = _recount(owner, when, last)
    assert grid.cohorts.tolist() == cohorts and grid.customers.tolist() == sizes
    for (row, p), (retained, repeat) in cells.items():
        assert (int(grid.retained[row, p]), int(grid.repeat[row, p])) == (retained, repeat)
        assert grid.observed[row, p]
    assert int(grid.observed.sum()) == len(cells)
