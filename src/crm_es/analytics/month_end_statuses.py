"""The churn rule's statuses at a series of month ends, from one set of purchase days.

At a month end e a customer's purchase days are those on or before e: a prefix of their days as
of any later date. So the days up to the last month end are loaded once and every month end's
purchase count, last purchase day and median inter-purchase gap follow from them, in month
order: a customer's count and last day change only in a month they bought in, and so does their
median, which is recomputed for those customers alone. The statuses are then those of
:func:`~crm_es.analytics.churn_rule.rule_statuses` with the same thresholds
(:func:`~crm_es.analytics.churn_rule.churn_thresholds`) a load as of that month end gives: the
same medians, computed as the population loaders compute them ((low + high) / 2 of the two
middle gaps in float64, exact for integers), the same floor for one-time buyers.

Explicit churn facts (``CustomerChurned`` / ``CustomerWonBack``) are given with the index of the
first month end they occurred by; a customer is churned explicitly at a month end when the
latest of their facts by then is a churn.

Pure numpy on arrays; days are day numbers (days since 1970-01-01), customers indexes
0 … customers − 1. One Python step per month end, none per customer or purchase day.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from crm_es.analytics.churn_rule import churn_thresholds, rule_statuses
from crm_es.analytics.churn_settings import ChurnRule

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["ExplicitChurns", "month_end_statuses"]


class ExplicitChurns(NamedTuple):
    """Explicit churn facts, a customer's rows together and in business-time order (then stream
    version): the order in which the latest fact of a customer is their last row."""

    owner: IntArray  # the customer of each fact
    seen_from: IntArray  # index of the first month end the fact occurred by
    churned: BoolArray  # a churn (else a win-back)

    @classmethod
    def none(cls) -> ExplicitChurns:
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, empty.astype(bool))


def _first_end_by(ends: IntArray, day: IntArray) -> IntArray:
    """The index of the first end on or after each day (``ends.size``: none)."""
    if day.size > 1024 and int(day.max()) - int(day.min()) < day.size:
        # Ten million days over a few years: each distinct day looked up once.
        low = int(day.min())
        table = np.searchsorted(ends, np.arange(low, int(day.max()) + 1), side="left")
        return table.astype(np.int64)[day - low]
    return np.searchsorted(ends, day, side="left").astype(np.int64)


def _stable_order(keys: IntArray, bound: int) -> IntArray:
    """A stable argsort of small keys in 0 … bound − 1: in 16 bits numpy sorts them by radix,
    in linear time (a month end per key: a few hundred at most)."""
    if bound < 2**15:
        return np.argsort(keys.astype(np.int16), kind="stable")
    return np.argsort(keys, kind="stable")


class _SortedGaps(NamedTuple):
    """Every customer's gaps between consecutive purchase days, sorted by customer then gap
    length (the order a median reads), each with the index of the first month end it exists by
    (that of its later day). A customer's gaps are one block, ``start[c]`` … + ``size[c]``."""

    gap: IntArray
    seen_from: IntArray
    start: IntArray
    size: IntArray


def _sorted_gaps(owner: IntArray, day: IntArray, seen: IntArray, customers: int) -> _SortedGaps:
    later = np.flatnonzero(np.r_[False, owner[1:] == owner[:-1]])  # days after a first one
    gap_owner = owner[later]
    gap = day[later] - day[later - 1]
    gap_seen = seen[later]
    size = np.bincount(gap_owner, minlength=customers).astype(np.int64)
    start = np.cumsum(size) - size
    if gap.size == 0:
        return _SortedGaps(gap, gap_seen, start, size)
    width = int(gap.max()) + 1
    slots = int(gap_seen.max()) + 1
    if customers * width * slots < 2**63:  # one integer key: a plain sort, then decoded
        key = (gap_owner * width + gap) * slots + gap_seen
        if customers * width * slots <= 2**31:
            key = key.astype(np.int32)  # the same order, half the bytes to sort
        key = np.sort(key).astype(np.int64)
        rest, gap_seen = np.divmod(key, slots)
        gap = rest % width
    else:
        order = np.lexsort((gap_seen, gap, gap_owner))
        gap, gap_seen = gap[order], gap_seen[order]
    # The medians gather from these a few times over: in fewer bytes, the gathers go faster.
    if width < 2**31:
        gap = gap.astype(np.int32)
    if slots < 2**15:
        gap_seen = gap_seen.astype(np.int16)
    return _SortedGaps(gap, gap_seen, start, size)


def _medians(gaps: _SortedGaps, who: IntArray, counts: IntArray, end: int) -> FloatArray:
    """The median gap of each customer ``who`` among their gaps that exist by month end index
    ``end``; ``counts`` (≥ 1 each): how many there are."""
    sizes = gaps.size[who]
    offsets = np.cumsum(sizes) - sizes
    at = np.repeat(gaps.start[who] - offsets, sizes) + np.arange(int(sizes.sum()))
    visible = at[gaps.seen_from[at] <= end]  # each block keeps its sorted order
    first = np.cumsum(counts) - counts
    low = gaps.gap[visible[first + (counts - 1) // 2]].astype(np.int64)
    high = gaps.gap[visible[first + counts // 2]].astype(np.int64)
    medians: FloatArray = (low + high) / 2
    return medians


def month_end_statuses(
    owner: IntArray,
    day: IntArray,
    customers: int,
    ends: IntArray,
    rule: ChurnRule,
    churns: ExplicitChurns | None = None,
) -> Iterator[IntArray]:
    """The status codes (into :data:`~crm_es.analytics.churn_rule.STATUS_NAMES`) of every
    customer at each month end ``ends`` (day numbers, ascending), in that order.

    ``owner``/``day``: distinct purchase days, sorted by customer then day (days after the last
    end are ignored). Every customer gets a code; whether they existed by then is the caller's.
    """
    owner = np.asarray(owner, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if owner.shape != day.shape or owner.ndim != 1:
        raise ValueError("owner and day must be 1-d arrays of the same length")
    if ends.size > 1 and bool(np.any(ends[1:] <= ends[:-1])):
        raise ValueError("month ends must be ascending")
    churns = churns or ExplicitChurns.none()
    if owner.size and (int(owner.min()) < 0 or int(owner.max()) >= customers):
        raise ValueError(f"owner indexes must lie in 0 … {customers - 1}")
    ordered = (owner[1:] > owner[:-1]) | ((owner[1:] == owner[:-1]) & (day[1:] > day[:-1]))
    if not bool(ordered.all()):
        raise ValueError("purchase days must be distinct and sorted by customer, then day")
    seen = _first_end_by(ends, day)
    per_customer = np.bincount(owner, minlength=customers)
    position = np.arange(owner.size) - (np.cumsum(per_customer) - per_customer)[owner]
    # The last day of each (customer, month end) run: what that month end changes.
    run_end = seen < ends.size
    run_end[:-1] &= (owner[1:] != owner[:-1]) | (seen[1:] != seen[:-1])
    runs = np.flatnonzero(run_end)
    runs = runs[_stable_order(seen[runs], ends.size)]
    run_bounds = np.searchsorted(seen[runs], np.arange(ends.size + 1), side="left")
    fact_order = _stable_order(churns.seen_from, ends.size + 1)  # by month end, then as given
    fact_bounds = np.searchsorted(
        churns.seen_from[fact_order], np.arange(ends.size + 1), side="left"
    )
    gaps = _sorted_gaps(owner, day, seen, customers)

    count = np.zeros(customers, dtype=np.int64)
    last = np.zeros(customers, dtype=np.int64)
    median = np.full(customers, np.nan)
    thresholds = churn_thresholds(count, median, rule)
    explicit = np.zeros(customers, dtype=bool)
    for end in range(ends.size):
        changed = runs[run_bounds[end] : run_bounds[end + 1]]
        if changed.size:
            who = owner[changed]
            count[who] = position[changed] + 1
            last[who] = day[changed]
            repeat = who[count[who] >= 2]
            median[repeat] = _medians(gaps, repeat, count[repeat] - 1, end)
            thresholds[who] = churn_thresholds(count[who], median[who], rule)
        facts = fact_order[fact_bounds[end] : fact_bounds[end + 1]]
        if facts.size:
            # Facts keep their order within a month end: a customer's last one is the latest.
            fact_owner = churns.owner[facts]
            latest = np.r_[fact_owner[1:] != fact_owner[:-1], True]
            explicit[fact_owner[latest]] = churns.churned[facts][latest]
        yield rule_statuses(count, last, thresholds, explicit, int(ends[end]), rule)
