"""RFM scoring: quintile scores, the 10-segment R×F grid and the Chinese 8-class map.

Pure functions over per-customer RFM *facts* (last purchase date, number of purchase days, net
spend). Scores depend on the reference date and on the whole population, so the read models store
only the facts and call :func:`score_rfm` at query time; the same facts and date always give the
same scores.

The segment maps are versioned data, not code branches: a new map is a new constant with a new
version string, so a report can say which map produced it and old reports stay reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from itertools import islice
from operator import lt
from types import MappingProxyType
from typing import Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "CN8_CELLS",
    "CN8_CLASSES",
    "CN8_MAP_V1",
    "CN8_MAP_VERSION",
    "CN8_THRESHOLD_RULE",
    "RFM_CODES",
    "RF_GRID_CELLS",
    "RF_GRID_V1",
    "RF_GRID_VERSION",
    "RF_SEGMENTS",
    "RfmArrays",
    "RfmInput",
    "RfmScore",
    "id_ranks",
    "score_rfm",
    "score_rfm_arrays",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class RfmInput(msgspec.Struct, frozen=True):
    """Time-independent RFM facts of one customer with at least one purchase."""

    customer_id: str
    last_purchase: date
    purchase_days: int  # same-day purchases merge, so this counts distinct purchase days
    net_spend: Decimal  # Decimal, not float: money must sum and compare exactly


class RfmScore(msgspec.Struct, frozen=True):
    """RFM values, quintile scores and segments of one customer as of a reference date."""

    customer_id: str
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    code: str  # "545" = r, f, m digits
    segment: str  # from RF_GRID_V1
    segment_cn: str  # from CN8_MAP_V1
    r_high: bool
    f_high: bool
    m_high: bool


# --- 10-segment R×F grid (M ignored) ---

RF_GRID_VERSION: Final = "rf-grid-v1"

# Short aliases only so the grid below reads as the published table.
_CH = "Champions"
_LC = "Loyal Customers"
_PL = "Potential Loyalists"
_NC = "New Customers"
_PR = "Promising"
_NA = "Need Attention"
_AS = "About To Sleep"
_AR = "At Risk"
_CL = "Can't Lose Them"
_HI = "Hibernating"

RF_SEGMENTS: Final[tuple[str, ...]] = (_CH, _LC, _PL, _NC, _PR, _NA, _AS, _AR, _CL, _HI)

# One row per R score (5 = most recent), one column per F score 1..5, to compare cell by cell with
# the published grid. The popular overlapping R/F/M *range* table is deliberately not used: under
# first-match-wins some of its segments can never be assigned.
_RF_GRID_ROWS_V1: Final[dict[int, tuple[str, str, str, str, str]]] = {
    #   F=1  F=2  F=3  F=4  F=5
    5: (_NC, _PL, _PL, _CH, _CH),
    4: (_PR, _PL, _PL, _LC, _LC),
    3: (_AS, _AS, _NA, _LC, _LC),
    2: (_HI, _HI, _AR, _AR, _CL),
    1: (_HI, _HI, _AR, _AR, _CL),
}

RF_GRID_V1: Final[Mapping[tuple[int, int], str]] = MappingProxyType(
    {(r, f): row[f - 1] for r, row in _RF_GRID_ROWS_V1.items() for f in range(1, 6)}
)

# --- Chinese 8-class map ---

CN8_MAP_VERSION: Final = "cn8-median-v1"

CN8_THRESHOLD_RULE: Final = (
    "R, F and M are each compared with the population median of the raw values (recency in days, "
    "purchase days, net spend) over the scored customers; high = strictly better than the median, "
    "a value equal to the median counts as low; for recency, better = fewer days since the last "
    "purchase"
)

CN8_CLASSES: Final[tuple[str, ...]] = (
    "重要价值客户",
    "重要保持客户",
    "重要发展客户",
    "重要挽留客户",
    "一般价值客户",
    "一般保持客户",
    "一般发展客户",
    "一般挽留客户",
)

# Key: (r_high, f_high, m_high). M decides 重要/一般; R×F decides 价值/保持/发展/挽留.
CN8_MAP_V1: Final[Mapping[tuple[bool, bool, bool], str]] = MappingProxyType(
    {
        (True, True, True): "重要价值客户",
        (False, True, True): "重要保持客户",
        (True, False, True): "重要发展客户",
        (False, False, True): "重要挽留客户",
        (True, True, False): "一般价值客户",
        (False, True, False): "一般保持客户",
        (True, False, False): "一般发展客户",
        (False, False, False): "一般挽留客户",
    }
)


# --- scoring ---


def score_rfm(rows: Sequence[RfmInput], as_of: date) -> list[RfmScore]:
    """Score every customer in ``rows`` against the others, as of ``as_of``.

    Quintiles are cut over *ranks*, not values: with ties (many customers with one purchase day)
    value quantile edges coincide and whole groups would vanish. Each dimension is ordered from
    worst to best by (goodness, customer_id), so among equal values the greater customer id ranks
    better, and the customer at rank index i of n gets ``i * 5 // n + 1``. Equal values can
    therefore get adjacent scores; that is the price of five equal-sized groups, and it is
    deterministic. With fewer than five customers some scores are skipped (n = 1 scores 1, n = 2
    scores 1 and 3); with none the result is empty.

    Raises ``ValueError`` for duplicate customer ids, a purchase after ``as_of``, or fewer than one
    purchase day: callers must pass only customers with at least one purchase up to the date.
    """
    _validate(rows, as_of)
    n = len(rows)
    if n == 0:
        return []
    recency = {row.customer_id: (as_of - row.last_purchase).days for row in rows}
    # Scores: "goodness" keys, larger is better; recency is inverted (fewer days is better).
    r_scores = _quintile_scores(rows, lambda row: -recency[row.customer_id])
    f_scores = _quintile_scores(rows, lambda row: row.purchase_days)
    m_scores = _quintile_scores(rows, lambda row: row.net_spend)

    recency_median = _median([Decimal(days) for days in recency.values()])
    frequency_median = _median([Decimal(row.purchase_days) for row in rows])
    monetary_median = _median([row.net_spend for row in rows])

    scores: list[RfmScore] = []
    for row in sorted(rows, key=lambda item: item.customer_id):
        cid = row.customer_id
        r, f, m = r_scores[cid], f_scores[cid], m_scores[cid]
        # Strictly better than the median is high; equal to the median is low (CN8_THRESHOLD_RULE).
        r_high = recency[cid] < recency_median
        f_high = row.purchase_days > frequency_median
        m_high = row.net_spend > monetary_median
        scores.append(
            RfmScore(
                customer_id=cid,
                recency_days=recency[cid],
                frequency=row.purchase_days,
                monetary=row.net_spend,
                r=r,
                f=f,
                m=m,
                code=f"{r}{f}{m}",
                segment=RF_GRID_V1[(r, f)],
                segment_cn=CN8_MAP_V1[(r_high, f_high, m_high)],
                r_high=r_high,
                f_high=f_high,
                m_high=m_high,
            )
        )
    return scores


def _validate(rows: Sequence[RfmInput], as_of: date) -> None:
    seen: set[str] = set()
    for row in rows:
        if row.customer_id in seen:
            raise ValueError(f"duplicate customer_id {row.customer_id!r} in RFM input")
        seen.add(row.customer_id)
        if row.purchase_days < 1:
            raise ValueError(
                f"customer {row.customer_id!r} has {row.purchase_days} purchase days; "
                "RFM scores only customers with at least one purchase"
            )
        if row.last_purchase > as_of:
            raise ValueError(
                f"customer {row.customer_id!r} last purchased on {row.last_purchase}, "
                f"after the reference date {as_of}"
            )


def _quintile_scores(
    rows: Sequence[RfmInput], goodness: Callable[[RfmInput], int | Decimal]
) -> dict[str, int]:
    """Map customer id to a 1..5 score: rank worst→best by (goodness, id), cut into five groups."""
    ordered = sorted(rows, key=lambda row: (goodness(row), row.customer_id))
    n = len(ordered)
    return {row.customer_id: index * 5 // n + 1 for index, row in enumerate(ordered)}


def _median(values: Sequence[Decimal]) -> Decimal:
    """Median in Decimal (halving money-sized values is exact), so ties with it are exact."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# --- vectorised scoring (whole populations) ---

# Beyond this a doubled value could overflow int64; such spends take the exact Python path.
_INT64_SAFE: Final = 2**61


class RfmArrays(NamedTuple):
    """:func:`score_rfm` as arrays, one entry per customer in input order."""

    r: IntArray
    f: IntArray
    m: IntArray
    r_high: BoolArray
    f_high: BoolArray
    m_high: BoolArray

    def code_index(self) -> IntArray:
        """Index of each customer's code in :data:`RFM_CODES`."""
        return (self.r - 1) * 25 + (self.f - 1) * 5 + (self.m - 1)

    def grid_index(self) -> IntArray:
        """Index of each customer's R×F cell in :data:`RF_GRID_CELLS`."""
        return (self.r - 1) * 5 + (self.f - 1)

    def cn_index(self) -> IntArray:
        """Index of each customer's class in :data:`CN8_CELLS`."""
        return np.asarray(self.r_high * 4 + self.f_high * 2 + self.m_high * 1, dtype=np.int64)

    def codes(self) -> list[str]:
        return [RFM_CODES[i] for i in self.code_index().tolist()]

    def segments(self) -> list[str]:
        return [RF_GRID_CELLS[i] for i in self.grid_index().tolist()]

    def segments_cn(self) -> list[str]:
        return [CN8_CELLS[i] for i in self.cn_index().tolist()]


_SCORES = range(1, 6)
# Lookup tables of the vectorised scores: codes by (r, f, m), segments by (r, f), classes by flags.
RFM_CODES: Final = tuple(f"{r}{f}{m}" for r in _SCORES for f in _SCORES for m in _SCORES)
RF_GRID_CELLS: Final = tuple(RF_GRID_V1[(r, f)] for r in _SCORES for f in _SCORES)
CN8_CELLS: Final = tuple(
    CN8_MAP_V1[(r_high, f_high, m_high)]
    for r_high in (False, True)
    for f_high in (False, True)
    for m_high in (False, True)
)


def id_ranks(ids: Sequence[str]) -> IntArray:
    """Rank of each customer id in Python string order: :func:`score_rfm`'s tie-break."""
    n = len(ids)
    if all(map(lt, ids, islice(ids, 1, None))):  # already sorted, as SQLite returns them
        return np.arange(n, dtype=np.int64)
    ranks = np.empty(n, dtype=np.int64)
    ranks[sorted(range(n), key=ids.__getitem__)] = np.arange(n, dtype=np.int64)
    return ranks


def score_rfm_arrays(
    id_rank: IntArray,
    recency_days: IntArray,
    purchase_days: IntArray,
    net_spend: Sequence[int] | IntArray,
) -> RfmArrays:
    """:func:`score_rfm` for a whole population, vectorised; the same scores and flags.

    ``id_rank`` orders the customer ids (see :func:`id_ranks`; distinct), ``recency_days`` counts
    days since the last purchase (>= 0), ``purchase_days`` >= 1, and ``net_spend`` is in integer
    minor units: scaling by the currency exponent changes neither the order nor the comparisons
    with the median, so the scores equal those of the Decimal spends (as long as those are exact in
    the Decimal context: below 10^26 minor units). Inputs are not validated.
    """
    r = _quintile_array(-recency_days, id_rank)
    f = _quintile_array(purchase_days, id_rank)
    # Doubled values against the sum of the two middle values: exact integer medians.
    r_high = 2 * recency_days < _twice_median(recency_days)
    f_high = 2 * purchase_days > _twice_median(purchase_days)
    if isinstance(net_spend, np.ndarray):
        spends: list[int] = net_spend.tolist() if net_spend.size else []
        largest = max(int(net_spend.max()), -int(net_spend.min())) if net_spend.size else 0
    else:
        spends = [int(value) for value in net_spend]
        largest = max(map(abs, spends), default=0)
    if largest >= _INT64_SAFE:
        m, m_high = _exact_spend_scores(spends, id_rank)
    else:
        spend = np.asarray(net_spend, dtype=np.int64)
        m = _quintile_array(spend, id_rank)
        m_high = 2 * spend > _twice_median(spend)
    return RfmArrays(r, f, m, r_high, f_high, m_high)


def _quintile_array(goodness: IntArray, id_rank: IntArray) -> IntArray:
    """:func:`_quintile_scores` on arrays: rank worst→best by (goodness, id), five groups."""
    n = goodness.size
    scores = np.empty(n, dtype=np.int64)
    scores[np.lexsort((id_rank, goodness))] = np.arange(n, dtype=np.int64) * 5 // max(n, 1) + 1
    return scores


def _exact_spend_scores(spends: list[int], id_rank: IntArray) -> tuple[IntArray, BoolArray]:
    """M scores and flags in Python ints, for spends too large for int64 arithmetic."""
    n = len(spends)
    ranked = sorted(range(n), key=lambda i: (spends[i], int(id_rank[i])))
    m = np.empty(n, dtype=np.int64)
    m[ranked] = np.arange(n, dtype=np.int64) * 5 // n + 1
    ordered = sorted(spends)
    twice = ordered[(n - 1) // 2] + ordered[n // 2]
    return m, np.array([2 * value > twice for value in spends], dtype=bool)


def _twice_median(values: IntArray) -> int:
    """2 × the median of :func:`_median`, an integer (0 for no values; then nothing is compared)."""
    n = values.size
    if n == 0:
        return 0
    ordered = np.partition(values, [(n - 1) // 2, n // 2])
    return int(ordered[(n - 1) // 2]) + int(ordered[n // 2])
