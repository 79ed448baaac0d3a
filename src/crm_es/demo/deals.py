"""Sales opportunities in the demo (跟踪销售机会): deals opened, moved through the pipeline's
stages, and won or lost, mostly for company customers.

Drawn with a random stream of each customer's own (seeded from its ref and registration time),
so adding opportunities leaves every other draw of the demo — purchases, surveys, churn — as it
was. Deals follow the default pipeline (线索 → 需求确认 → 方案报价 → 谈判): most start as a
lead; at each stage a deal may be lost (price, competitor, budget, timing…) or move on, now
and then back a stage; after negotiation most are won, a won deal naming the order it became
when the customer bought within a fortnight. Steps past the end of the demo period are not
sent, so recent deals stay open: the pipeline report has something to forecast.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Final

from crm_es.demo.population import STAFF
from crm_es.demo.touches import DAY, MINUTE, Touches, user
from crm_es.domain import commands as c
from crm_es.domain.pipeline import DEFAULT_PIPELINE
from crm_es.domain.values import Category, CustomerKind

# Chance that a customer has deals at all, by kind and category.
COMPANY_SHARE: Final = 0.6
INDIVIDUAL_SHARE: Final = {Category.INTENDED: 0.12, Category.SIGNED: 0.06}
OTHER_SHARE: Final = 0.02
TITLES: Final = ("年度采购框架", "门店设备升级", "员工福利采购", "会员系统定制",
                 "批量换新", "新品试销合作", "售后延保套餐", "节日礼品团购", "办公家电更新",
                 "智能家居整装")  # fmt: skip
SOURCES: Final = (("referral", 3), ("exhibition", 2), ("website", 3), ("cold_call", 1),
                  ("partner", 2), ("wechat", 2))  # fmt: skip
LOST_REASONS: Final = (("price", 5), ("competitor", 4), ("no_budget", 3), ("timing", 2),
                       ("no_decision", 2), ("requirements", 1))  # fmt: skip
STAGES: Final = DEFAULT_PIPELINE.keys
# At each stage: the chance the deal is lost there, and that it moves on (else it stalls).
LOSE_AT: Final = (0.35, 0.2, 0.2, 0.25)
ADVANCE: Final = 0.85


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def draw_deals(life: Touches) -> None:
    """Add the customer's opportunity commands to ``life`` (some customers have none)."""
    p = life.p
    rng = random.Random(f"deals:{p.ref}:{p.registered_at.isoformat()}")
    if p.kind is CustomerKind.COMPANY:
        share = COMPANY_SHARE
    else:
        share = INDIVIDUAL_SHARE.get(p.category, OTHER_SHARE)
    if rng.random() >= share:
        return
    count = rng.choice((1, 1, 1, 2, 2, 3)) if p.kind is CustomerKind.COMPANY else 1
    at = life.reg + rng.uniform(0.5, 60) * DAY
    for n in range(1, count + 1):
        _deal(life, rng, f"OPP-{p.ref[2:]}-{n}", at)
        at += rng.uniform(30, 240) * DAY


def _deal(life: Touches, rng: random.Random, opportunity_id: str, opened: datetime) -> None:
    p = life.p
    owner = p.owner or f"staff:{rng.choice(STAFF)}"
    actor = user(owner)
    scale = 60_000 if p.kind is CustomerKind.COMPANY else 8_000
    amount = Decimal(round(scale * rng.lognormvariate(0, 0.8), -2))
    stage = 0 if rng.random() < 0.8 else 1
    close_in = rng.randint(30, 150)
    life.emit(
        c.OpenOpportunity, opened, actor, opportunity_id=opportunity_id,
        title=rng.choice(TITLES), amount=format(amount, "f"), currency="CNY",
        expected_close_on=(opened + close_in * DAY).date(), owner=owner,
        source=_weighted(rng, SOURCES), stage=STAGES[stage],
    )  # fmt: skip
    at = opened
    while True:
        at += rng.uniform(4, 35) * DAY
        if rng.random() < LOSE_AT[stage]:
            life.emit(c.LoseOpportunity, at, actor, opportunity_id=opportunity_id,
                      lost_reason=_weighted(rng, LOST_REASONS))  # fmt: skip
            return
        if stage == len(STAGES) - 1:
            _win(life, rng, opportunity_id, at, actor)
            return
        if rng.random() > ADVANCE:
            continue  # stalled at its stage for a while
        back = stage > 1 and rng.random() < 0.06
        stage = stage - 1 if back else stage + 1
        life.emit(c.AdvanceOpportunity, at, actor, opportunity_id=opportunity_id,
                  stage=STAGES[stage])  # fmt: skip


def _win(life: Touches, rng: random.Random, opportunity_id: str, at: datetime, actor: str) -> None:
    """Won at ``at``, or as the order the customer placed within the next fortnight."""
    order = next(
        (
            (t, command.order_id)
            for t, command in sorted(life.commands, key=lambda item: item[0])
            if isinstance(command, c.RecordPurchase) and at <= t <= at + 14 * DAY
        ),
        None,
    )
    if order is not None:
        life.emit(c.WinOpportunity, order[0] + 10 * MINUTE, actor, opportunity_id=opportunity_id,
                  order_id=order[1])  # fmt: skip
    else:
        life.emit(c.WinOpportunity, at, actor, opportunity_id=opportunity_id)
