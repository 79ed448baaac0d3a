"""Report ``pipeline``: the sales opportunities as of a date, by stage and by owner.

Every figure is as of the query (events occurred by ``as_of`` and recorded by ``known_at``), so a
report for (D, T) is the same forever:

- **open**: opportunities not won or lost by the cut, their count and amount per currency (never
  summed across currencies), by the stage they are at and by their owner;
- **weighted forecast**: each open amount times the win probability its stage carried when it got
  there (stamped on the event, so a later change of the pipeline's probabilities never moves a
  past forecast), rounded half to even to the currency's minor unit per group;
- **win rate**: won / (won + lost) × 100 over the opportunities closed by the cut;
- **cycle time**: the mean days from opening to winning or losing, over those closed by the cut
  (overall, and for the won and the lost apart);
- **stage-to-stage conversion**: of the opportunities opened by the cut, those that reached each
  open stage of the pipeline (an opportunity opened at, or moved on to, a later stage passed the
  earlier ones; won passes every one), and the share of them that reached the next stage — the
  last one's next is won. Stages are ranked by the store's pipeline as it stands; a stage the
  pipeline no longer lists is shown after the listed ones, and ranks in no conversion;
- **lost reasons**: the opportunities lost by the cut, by reason code, with their share and amount.

Owners are the opportunity's (given when it was opened, else the customer's owner then);
``(unassigned)`` when it had none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from statistics import fmean
from typing import Final, TypeVar

import msgspec

from crm_es.analytics.satisfaction import rate
from crm_es.domain.pipeline import LOST, WON, Pipeline
from crm_es.domain.values import format_minor
from crm_es.reports.facts.opportunities import OPEN, OpportunityState, fold_opportunities
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

UNASSIGNED: Final = "(unassigned)"


class PipelineFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of a group of opportunities (all of them, or one owner's)."""

    open: int
    open_amount: dict[str, str]  # currency -> decimal string, for each of the report's currencies
    weighted_amount: dict[str, str]
    won: int
    lost: int
    won_amount: dict[str, str]
    win_rate: float | None  # % of the closed that were won
    cycle_days_mean: float | None  # opening to closing, over the closed


F = TypeVar("F", bound=PipelineFigures)


class OwnerPipeline(PipelineFigures, frozen=True, kw_only=True):
    owner: str


class StagePipeline(msgspec.Struct, frozen=True, kw_only=True):
    stage: str
    label: str
    probability: int | None  # the pipeline's, now (None: a stage it no longer lists)
    open: int
    open_amount: dict[str, str]
    weighted_amount: dict[str, str]
    reached: int | None  # opened by the cut and got this far (None: not ranked)
    next_stage: str | None
    conversion: float | None  # % of those that reached this stage and reached the next


class LostReason(msgspec.Struct, frozen=True, kw_only=True):
    lost_reason: str
    lost: int
    share: float  # % of everything lost by the cut
    lost_amount: dict[str, str]


class PipelineReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    currencies: list[str]  # every currency an opportunity opened by the cut is in
    opened: int  # opportunities opened by the cut
    won_cycle_days_mean: float | None
    lost_cycle_days_mean: float | None
    overall: PipelineFigures
    by_stage: list[StagePipeline]
    by_owner: list[OwnerPipeline]
    lost_reasons: list[LostReason]


def pipeline_report(
    tx: Tx, tables: dict[str, str], query: ReportQuery, pipeline: Pipeline
) -> PipelineReport:
    everything = fold_opportunities(tx, tables, query)
    currencies = sorted({o.currency for o in everything})
    money = _Money(currencies)
    owners: dict[str, list[OpportunityState]] = {}
    for o in everything:
        owners.setdefault(o.owner or UNASSIGNED, []).append(o)
    won = [o for o in everything if o.status == WON]
    lost = [o for o in everything if o.status == LOST]
    return PipelineReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=query.reference_date.isoformat(),
        currencies=currencies,
        opened=len(everything),
        won_cycle_days_mean=_mean_days(won),
        lost_cycle_days_mean=_mean_days(lost),
        overall=_figures(PipelineFigures, everything, money),
        by_stage=_stages(everything, pipeline, money),
        by_owner=[
            _figures(OwnerPipeline, group, money, owner=name)
            for name, group in sorted(owners.items())
        ],
        lost_reasons=_lost_reasons(lost, money),
    )


class _Money:
    """Amounts per currency as the report's decimal strings, every currency in every group."""

    def __init__(self, currencies: list[str]) -> None:
        self.currencies = currencies

    def total(self, group: Iterable[OpportunityState]) -> dict[str, str]:
        sums: Counter[str] = Counter()
        for o in group:
            sums[o.currency] += o.amount
        return {c: format_minor(sums[c], c) for c in self.currencies}

    def weighted(self, group: Iterable[OpportunityState]) -> dict[str, str]:
        """Σ amount × probability / 100 per currency, rounded half to even once per group."""
        sums: Counter[str] = Counter()
        for o in group:
            sums[o.currency] += o.amount * o.probability
        return {c: format_minor(_half_even(sums[c], 100), c) for c in self.currencies}


def _half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def win_rate(group: Iterable[OpportunityState]) -> float | None:
    """% of the closed opportunities of ``group`` that were won (None: none closed): the one
    definition, shared with the goals report."""
    closed = [o.status for o in group if o.status != OPEN]
    return rate(closed.count(WON), len(closed))


def _mean_days(closed: list[OpportunityState]) -> float | None:
    days = [d for o in closed if (d := o.cycle_days) is not None]
    return round(fmean(days), 2) if days else None


def _figures(cls: type[F], group: list[OpportunityState], money: _Money, **extra: str) -> F:
    open_ = [o for o in group if o.status == OPEN]
    won = [o for o in group if o.status == WON]
    closed = [o for o in group if o.status != OPEN]
    return cls(
        open=len(open_),
        open_amount=money.total(open_),
        weighted_amount=money.weighted(open_),
        won=len(won),
        lost=len(closed) - len(won),
        won_amount=money.total(won),
        win_rate=win_rate(group),
        cycle_days_mean=_mean_days(closed),
        **extra,
    )


def _furthest(o: OpportunityState, pipeline: Pipeline) -> int | None:
    """The furthest rank ``o`` reached by the pipeline's order (won: past every open stage)."""
    ranks = [r for stage in o.stages if (r := pipeline.rank(stage)) is not None]
    if o.status == WON:
        ranks.append(pipeline.rank(WON) or 0)
    return max(ranks, default=None)


def _stages(
    everything: list[OpportunityState], pipeline: Pipeline, money: _Money
) -> list[StagePipeline]:
    open_ = [o for o in everything if o.status == OPEN]
    furthest = [r for o in everything if (r := _furthest(o, pipeline)) is not None]
    keys = pipeline.keys
    reached = [sum(1 for r in furthest if r >= k) for k in range(len(keys) + 1)]
    rows = []
    for k, stage in enumerate(pipeline.stages):
        here = [o for o in open_ if o.stage == stage.key]
        rows.append(
            StagePipeline(
                stage=stage.key, label=stage.label, probability=stage.probability,
                open=len(here), open_amount=money.total(here),
                weighted_amount=money.weighted(here), reached=reached[k],
                next_stage=keys[k + 1] if k + 1 < len(keys) else WON,
                conversion=rate(reached[k + 1], reached[k]),
            )
        )  # fmt: skip
    for key in sorted({o.stage for o in open_} - set(keys)):  # stages the pipeline dropped
        here = [o for o in open_ if o.stage == key]
        rows.append(
            StagePipeline(
                stage=key, label=pipeline.label(key), probability=None, open=len(here),
                open_amount=money.total(here), weighted_amount=money.weighted(here),
                reached=None, next_stage=None, conversion=None,
            )
        )  # fmt: skip
    return rows


def _lost_reasons(lost: list[OpportunityState], money: _Money) -> list[LostReason]:
    by_reason: dict[str, list[OpportunityState]] = {}
    for o in lost:
        by_reason.setdefault(o.lost_reason or "", []).append(o)
    ordered = sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        LostReason(
            lost_reason=reason,
            lost=len(group),
            share=rate(len(group), len(lost)) or 0.0,
            lost_amount=money.total(group),
        )
        for reason, group in ordered
    ]


def table_rows(report: PipelineReport) -> list[dict[str, object]]:
    """One row per (dimension, key): overall, each stage, each owner, each lost reason; amounts
    as ``open_amount_<currency>``, ``weighted_<currency>``, ``won_amount_<currency>`` and
    ``lost_amount_<currency>`` columns. Every row has every column (None where it has no
    value)."""
    columns = ["dimension", "key", "label", "probability", "open"]
    columns += [f"open_amount_{c}" for c in report.currencies]
    columns += [f"weighted_{c}" for c in report.currencies]
    columns += ["won", "lost", "win_rate", "cycle_days_mean", "reached", "next_stage", "conversion"]
    columns += [f"won_amount_{c}" for c in report.currencies]
    columns += ["share", *(f"lost_amount_{c}" for c in report.currencies)]
    rows: list[dict[str, object]] = []

    def add(dimension: str, key: str, item: msgspec.Struct) -> None:
        row: dict[str, object] = dict.fromkeys(columns)
        row.update(dimension=dimension, key=key)
        for field, value in msgspec.structs.asdict(item).items():
            if isinstance(value, dict):
                prefix = "weighted" if field == "weighted_amount" else field
                row.update({f"{prefix}_{c}": v for c, v in value.items()})
            elif field in row:
                row[field] = value
        rows.append(row)

    add("overall", "all", report.overall)
    for stage in report.by_stage:
        add("stage", stage.stage, stage)
    for owner in report.by_owner:
        add("owner", owner.owner, owner)
    for reason in report.lost_reasons:
        add("lost_reason", reason.lost_reason, reason)
    return rows
