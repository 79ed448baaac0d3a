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
from types import MappingProxyType
from typing import Final

import msgspec

__all__ = [
    "CN8_CLASSES",
    "CN8_MAP_V1",
    "CN8_MAP_VERSION",
    "CN8_THRESHOLD_RULE",
    "RF_GRID_V1",
    "RF_GRID_VERSION",
    "RF_SEGMENTS",
    "RfmInput",
    "RfmScore",
    "score_rfm",
]


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
