"""One demo customer's life between registration and the end of the demo period.

Purchases follow a BG/NBD-like process (Fader, Hardie & Lee 2005): a purchase rate
λ ~ Gamma(r=0.8, α=30 days) per customer, thinned by the retail calendar (双十一, 双十二, 618, the
weeks before Spring Festival; a lull during the holiday), and after each purchase the customer
drops out with probability p ~ Beta(0.8, 3). Some drop-outs are recorded as churned; some of
those buy again later (the domain then records the win-back) or are won back by their manager.
Around the purchases: points, return visits, services, surveys, complaints, refunds, redemptions,
and through the whole life contacts, greetings, survey campaigns and profile changes.

Commands come out unordered; :func:`crm_es.demo.generator.settle` orders them and applies the
stateful rules (point balances, churn status) that decide which of them are sent.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from crm_es.demo import texts
from crm_es.demo.deals import draw_deals
from crm_es.demo.population import (
    PRODUCTS,
    SEASON_MAX,
    STAFF,
    clock,
    pick,
    season,
    spring_festival,
)
from crm_es.demo.touches import DAY, GAP_TOPICS, MINUTE, PURCHASE_TOPICS, Touches, user
from crm_es.domain import commands as c
from crm_es.domain.values import (
    TIER_THRESHOLDS,
    CareKind,
    Category,
    Channel,
    CustomerKind,
    Direction,
    Metric,
    ServicePhase,
    Tier,
)

BUYER_SHARE: Final = {
    Category.POTENTIAL: 0.45,
    Category.INTENDED: 0.72,
    Category.PROSPECTIVE: 0.85,
    Category.SIGNED: 0.93,
    Category.PARTNER: 0.95,
    Category.INTERNAL: 0.5,
}
PURCHASE_CHANNELS: Final = (
    (Channel.STORE, 0.3),
    (Channel.ONLINE, 0.35),
    (Channel.APP, 0.2),
    (Channel.WECHAT, 0.15),
)
CHANNEL_ACTOR: Final = {
    Channel.ONLINE: "api:shop",
    Channel.APP: "api:app",
    Channel.WECHAT: "api:wechat",
}
SILVER_SPEND: Final = dict(TIER_THRESHOLDS)[Tier.SILVER] / 100  # in CNY, as ``spent`` counts
HEAVY_GOODS: Final = frozenset({"appliances", "digital", "b2b", "home"})


class Life(Touches):
    """Draws the commands of one customer: call :meth:`simulate`."""

    def simulate(self) -> list[tuple[datetime, c.Command]]:
        rng, p = self.rng, self.p
        if rng.random() < 0.6:
            consent = {"marketing": True, "lawful_basis": "consent"}
            self.emit(c.ChangeConsent, self.reg + 2 * MINUTE, "system:demo", **consent)
        for _ in range(rng.choice((1, 1, 2, 3))):
            self.contact(self.later(self.reg, 0, 30))
        if rng.random() < 0.4:
            self.service(self.later(self.reg, 0, 20), ServicePhase.PRE_SALE, None)
        if rng.random() < BUYER_SHARE[p.category]:
            same_day = rng.random() < 0.35
            wait = rng.uniform(0.01, 0.08) if same_day else rng.expovariate(1 / 25)
            self.episode(self.reg + wait * DAY)
        elif p.category is Category.POTENTIAL and rng.random() < 0.08:
            self.churn(self.later(self.reg, 30, 180), comeback=False)  # a lost lead
        draw_deals(self)  # after the purchases: a won deal may name the order it became
        self.background()
        self.greetings()
        self.campaigns()
        self.profile_changes()
        self.expiry_jobs()
        self.tier_review()
        return self.commands

    def episode(self, first: datetime) -> None:
        """Purchases from ``first`` until the customer drops out (BG/NBD) or the period ends."""
        rng = self.rng
        lam = max(rng.gammavariate(0.8, 1 / 30), 1e-6)  # purchases per day
        if self.p.kind is CustomerKind.COMPANY:
            lam *= 1.5
        dropout = rng.betavariate(0.8, 3)
        t = at = max(first.replace(second=0, microsecond=0), self.reg + 5 * MINUTE)
        while True:
            self.purchase(at)
            if rng.random() < dropout:
                self.churn(self.later(at, 60, 240), comeback=True)
                return
            while True:  # thinning: a Poisson process of rate lam * season(day)
                t += rng.expovariate(lam * SEASON_MAX) * DAY
                if t > self.end:
                    return
                if rng.random() * SEASON_MAX < season(t.date()):
                    break
            at = self.day_time(t.date(), self.reg)

    def churn(self, at: datetime, *, comeback: bool) -> None:
        rng = self.rng
        if (comeback and rng.random() > 0.3) or not self.inside(at):
            return
        reason = rng.choice(texts.CHURN_REASONS)
        self.emit(c.ChurnCustomer, at, user(self.staff()), churn_reason=reason)
        u = rng.random()
        if comeback and u < 0.3:  # buys again: the domain records CustomerWonBack itself
            self.episode(at + (1 + rng.expovariate(1 / 90)) * DAY)
        elif comeback and u < 0.42:  # won back by the account manager, then buys
            back = self.later(at, 20, 120)
            self.emit(c.WinBackCustomer, back, user(self.staff()), reason="重新签约")
            self.episode(back + rng.uniform(1, 10) * DAY)

    def purchase(self, at: datetime) -> None:
        rng, p = self.rng, self.p
        product = PRODUCTS[pick(rng, p.products)]
        channel = pick(rng, PURCHASE_CHANNELS)
        staff = self.staff() if channel is Channel.STORE else None
        value = product.median * p.spend * math.exp(rng.gauss(0, product.sigma))
        cents = rng.choice((0, 0, 90, 99, rng.randrange(100)))
        amount = Decimal(max(int(value), 1)) + Decimal(cents) / 100
        if rng.random() < 0.005:
            amount = Decimal("0.00")  # a free sample order: real order data has them
        order_id = f"SO{next(self.ids.orders):07d}"
        most = 20 if p.kind is CustomerKind.COMPANY and product.code == "b2b" else 2
        items = [
            c.LineItemInput(sku=sku, name=name, quantity=rng.randint(1, most))
            for sku, name in rng.sample(product.items, rng.choice((1, 1, 2, 3)))
        ]
        if rng.random() < 0.35:  # asked before buying
            self.contact(max(at - rng.uniform(0.05, 3) * DAY, self.reg + MINUTE), Direction.INBOUND)
        self.emit(
            c.RecordPurchase,
            at,
            user(staff) if staff else CHANNEL_ACTOR[channel],
            order_id=order_id,
            amount=format(amount, "f"),  # money travels as a decimal string
            currency="CNY",
            items=items,
            product_category=product.code,
            channel=channel,
            staff=staff,
        )
        if self.inside(at):
            self.purchases.append(at)
            self.spent += float(amount)
            self.after_purchase(at, order_id, amount, product.code)

    def after_purchase(self, at: datetime, order_id: str, amount: Decimal, code: str) -> None:
        rng, p, n = self.rng, self.p, len(self.purchases)
        if amount >= 1:
            never = rng.random() < 0.08
            self.grant(at + MINUTE, int(amount), "purchase", None if never else 365)
        prospect = (Category.POTENTIAL, Category.INTENDED, Category.PROSPECTIVE)
        if n == 1 and p.category in prospect and rng.random() < 0.6:
            self.emit(c.UpdateProfile, at + 2 * MINUTE, "system:demo", category=Category.SIGNED)
        vip = self.spent > 10_000 and not self.vip
        if n in (2, 3) or vip:
            self.vip = self.vip or vip
            add = (["VIP"] if vip else []) + (["复购"] if n == 3 else [])
            remove = ["新客"] if n == 2 else []
            self.emit(c.ChangeTags, at + 3 * MINUTE, "system:demo", add=add, remove=remove)
        heavy = code in HEAVY_GOODS
        if rng.random() < (0.6 if heavy else 0.1):
            self.service(self.later(at, 0.5, 3), ServicePhase.IN_SALE, order_id)
        if rng.random() < (0.2 if heavy else 0.04):
            self.service(self.later(at, 20, 200), ServicePhase.AFTER_SALE, order_id)
        if rng.random() < 0.45:
            due = (at + rng.randint(3, 7) * DAY).date()
            self.care(at + 5 * MINUTE, CareKind.RETURN_VISIT, due, rng.choice(texts.RETURN_VISIT))
        if rng.random() < 0.3:
            self.survey(self.later(at, 0.5, 3), Metric.CSAT, f"CSAT-{order_id}", PURCHASE_TOPICS)
        if rng.random() < 0.05 + 0.04 * max(0.0, -p.mood):
            self.complaint(self.later(at, 1, 10))
        if amount >= 1 and rng.random() < 0.04:
            part = (amount * Decimal(rng.uniform(0.1, 0.9))).quantize(Decimal("0.01"), "ROUND_DOWN")
            self.emit(
                c.RefundPurchase,
                self.later(at, 2, 14),
                "api:shop",
                order_id=order_id,
                # None: the whole order
                amount=format(part, "f") if rng.random() < 0.5 else None,
                currency="CNY",
                reason=rng.choice(("七天无理由退货", "质量问题退货", "价格保护")),
            )
        if rng.random() < 0.3:  # settle() trims it to the balance of the day, or drops it
            points = rng.choice((100, 200, 300, 500, 1000, 2000))
            reward = rng.choice(texts.REWARDS)
            self.emit(
                c.RedeemPoints, self.later(at, 3, 150), "api:app", points=points, reward=reward
            )

    def background(self) -> None:
        """Marketing touches and inquiries while the customer is engaged."""
        last = self.purchases[-1] if self.purchases else self.reg
        until = min(self.end, last + 120 * DAY)
        rate = 1 / 35 if self.purchases else 1 / 60
        t = self.reg + self.rng.expovariate(rate) * DAY
        while t < until:
            self.contact(self.day_time(t.date(), self.reg))
            t += self.rng.expovariate(rate) * DAY

    def greetings(self) -> None:
        """Birthday greetings and points, Spring Festival greetings, quarterly company visits."""
        rng, p = self.rng, self.p
        for year in range(self.reg.year, self.end.year + 1):
            if p.birthday is not None:
                day = date(year, p.birthday.month, min(p.birthday.day, 28))
                if p.owner and rng.random() < 0.7:
                    greeting = "生日祝福并赠送积分"
                    self.care(clock(rng, day - 7 * DAY), CareKind.BIRTHDAY_GREETING, day, greeting)
                if rng.random() < 0.5:
                    self.grant(clock(rng, day), 200, "birthday", None)
            if p.category in (Category.SIGNED, Category.PARTNER) and rng.random() < 0.6:
                sf = spring_festival(year)
                self.care(
                    clock(rng, sf - 10 * DAY), CareKind.HOLIDAY_GREETING, sf - DAY, "春节问候"
                )
        if p.kind is CustomerKind.COMPANY:
            t = self.reg + rng.uniform(20, 90) * DAY
            while t < self.end:
                due = (t + 14 * DAY).date()
                self.care(self.day_time(t.date(), self.reg), CareKind.CHECK_IN, due, "季度客户拜访")
                t += rng.uniform(70, 110) * DAY

    def campaigns(self) -> None:
        """Half-yearly NPS and quarterly expectation/performance surveys of buyers."""
        if not self.purchases:
            return
        first, rng = self.purchases[0], self.rng
        for year in range(first.year, self.end.year + 1):
            for half, month in ((1, 1), (2, 7)):
                at = clock(rng, date(year, month, 15) + rng.randint(0, 10) * DAY)
                if at > first and rng.random() < 0.3:
                    self.survey(at, Metric.NPS, f"NPS-{year}H{half}")
            for quarter in range(1, 5):
                at = clock(rng, date(year, quarter * 3, 1) + rng.randint(0, 14) * DAY)
                if at > first and rng.random() < 0.08:
                    self.survey(at, Metric.GAP, f"GAP-{year}Q{quarter}", GAP_TOPICS)

    def profile_changes(self) -> None:
        rng = self.rng
        span = max((self.end - self.reg) / DAY, 10)
        if rng.random() < 0.12:
            number = f"{rng.randrange(10**4):04d} {rng.randrange(10**4):04d}"
            phone = f"+86 13{rng.randrange(10)} {number}"
            self.emit(
                c.UpdateProfile, self.later(self.reg, 1, span), user(self.staff()), phone=phone
            )
        if rng.random() < 0.08:
            owner = f"staff:{rng.choice(STAFF)}"
            at = self.later(self.reg, 1, span)
            self.emit(c.AssignOwner, at, "user:manager-zhou", owner=owner)
        if rng.random() < 0.1:
            tag = rng.choice(("双11", "会员日", "价格敏感", "高潜", "沉默"))
            self.emit(c.ChangeTags, self.later(self.reg, 1, span), user(self.staff()), add=[tag])
        if rng.random() < 0.06:
            withdrawn = {"marketing": False, "lawful_basis": "withdrawn"}
            self.emit(c.ChangeConsent, self.later(self.reg, 10, span), "api:app", **withdrawn)

    def tier_review(self) -> None:
        """The nightly job (``crm-es maintain``) a year after the last purchase of a customer
        who spent enough for a tier: the orders have left the window, the tier falls."""
        if not self.purchases or self.spent < SILVER_SPEND:
            return
        last = max(self.purchases)
        at = (last + 366 * DAY).replace(hour=3, minute=0, second=0, microsecond=0)
        if self.inside(at):
            self.emit(c.ReviewTier, at, "system:maintain")

    def expiry_jobs(self) -> None:
        """The monthly loyalty job; :func:`settle` keeps only the runs that expire something."""
        if not self.expiries:
            return
        first = min(self.expiries)
        year, month = first.year, first.month
        while True:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            at = datetime(year, month, 1, 3, 0, tzinfo=self.reg.tzinfo)
            if at > self.end:
                return
            self.emit(c.ExpirePoints, at, "system:loyalty")
