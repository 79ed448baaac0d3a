"""One demo customer's life, as business-timed commands.

:class:`Life` draws everything that happens to one customer between registration and the end of the
demo period: purchases from a BG/NBD-like process with seasonality, and around them points, care
tasks, services, contacts, complaints, surveys, churn and win-back. Commands come out unordered;
:func:`crm_es.demo.generator.settle` orders them and applies the stateful rules (point balances,
churn status) that decide which of them are sent.

Every command that depends on an earlier one (a resolution on its complaint, a refund on its order)
is timed strictly later, so ordering by business time keeps every dependency satisfied.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final

from crm_es.demo import texts
from crm_es.demo.population import (
    PRODUCTS,
    SEASON_MAX,
    STAFF,
    Profile,
    clock,
    pick,
    season,
    spring_festival,
)
from crm_es.domain import commands as c
from crm_es.domain.values import (
    SLA_HOURS,
    CareKind,
    Category,
    Channel,
    CustomerKind,
    Direction,
    Metric,
    ServicePhase,
)

MINUTE: Final = timedelta(minutes=1)
DAY: Final = timedelta(days=1)
BUYER_SHARE: Final = {Category.POTENTIAL: 0.45, Category.INTENDED: 0.72, Category.SIGNED: 0.93,
                      Category.PARTNER: 0.95, Category.INTERNAL: 0.5}  # fmt: skip
PURCHASE_CHANNELS: Final = ((Channel.STORE, 0.3), (Channel.ONLINE, 0.35), (Channel.APP, 0.2),
                            (Channel.WECHAT, 0.15))  # fmt: skip
CHANNEL_ACTOR: Final = {Channel.ONLINE: "api:shop", Channel.APP: "api:app",
                        Channel.WECHAT: "api:wechat"}  # fmt: skip
CSAT_W: Final = (0.06, 0.07, 0.12, 0.33, 0.42)
NPS_W: Final = (0.03, 0.02, 0.03, 0.03, 0.04, 0.07, 0.08, 0.14, 0.2, 0.18, 0.18)
CES_W: Final = (0.04, 0.05, 0.08, 0.15, 0.25, 0.26, 0.17)


class Ids:
    """Demo-wide counters, so order, complaint and task ids are unique across all customers."""

    def __init__(self) -> None:
        self.orders = itertools.count(1)
        self.complaints = itertools.count(1)
        self.tasks = itertools.count(1)


def user(staff: str) -> str:
    return "user:" + staff.rsplit(":", 1)[-1]


def _scored(rng: random.Random, weights: tuple[float, ...], low: int, shift: float) -> int:
    """A skewed score; ``shift`` (mood) moves the answer up or down by about a point."""
    base = rng.choices(range(len(weights)), weights=weights)[0]
    moved = base + round(shift * rng.random() * 1.5)
    return low + min(len(weights) - 1, max(0, moved))


class Life:
    """Draws the commands of one customer; read :attr:`commands` afterwards."""

    def __init__(
        self, rng: random.Random, profile: Profile, register: c.RegisterCustomer,
        end: datetime, ids: Ids,
    ) -> None:  # fmt: skip
        self.rng, self.p, self.end, self.ids = rng, profile, end, ids
        self.reg = profile.registered_at
        self.commands: list[c.Command] = [register]
        self.purchases: list[datetime] = []
        self.spent = 0.0
        self.surveys = 0
        self.services = 0
        self.expiries: list[date] = []

    # --- helpers ---------------------------------------------------------------------------

    def add(self, command: c.Command) -> None:
        at = command.occurred_at
        if at is not None and self.reg < at <= self.end:
            self.commands.append(command)

    def staff(self) -> str:
        return self.p.owner or f"staff:{self.rng.choice(STAFF)}"

    def day_time(self, day: date, after: datetime) -> datetime:
        return max(clock(self.rng, day), after + 5 * MINUTE)

    def later(self, after: datetime, low: float, high: float) -> datetime:
        """A business time ``low``..``high`` days after ``after`` (at least five minutes later)."""
        return self.day_time((after + self.rng.uniform(low, high) * DAY).date(), after)

    # --- the life ----------------------------------------------------------------------------

    def simulate(self) -> list[c.Command]:
        rng, p = self.rng, self.p
        if rng.random() < 0.6:
            self.add(c.ChangeConsent(customer=p.ref, marketing=True, lawful_basis="consent",
                                     occurred_at=self.reg + 2 * MINUTE, actor="system:demo"))  # fmt: skip
        for _ in range(rng.choice((1, 1, 2, 3))):
            self.contact(self.later(self.reg, 0, 30))
        if rng.random() < 0.4:
            self.service(self.later(self.reg, 0, 20), ServicePhase.PRE_SALE, None)
        if rng.random() < BUYER_SHARE[p.category]:
            same_day = rng.random() < 0.35
            wait = rng.uniform(0.01, 0.08) if same_day else rng.expovariate(1 / 25)
            self.episode(self.reg + wait * DAY)
        elif p.category is Category.POTENTIAL and rng.random() < 0.08:
            self.churn(self.later(self.reg, 30, 180), comeback=False)
        self.background()
        self.greetings()
        self.campaigns()
        self.profile_changes()
        self.expiry_jobs()
        return self.commands

    def episode(self, first: datetime) -> None:
        """Purchases from ``first`` until the customer drops out (BG/NBD) or the period ends."""
        rng = self.rng
        lam = max(rng.gammavariate(0.8, 1 / 30), 1e-6)  # purchases per day
        if self.p.kind is CustomerKind.COMPANY:
            lam *= 1.5
        dropout = rng.betavariate(0.8, 3)
        t = first
        while t <= self.end:
            self.purchase(t if t.date() == first.date() else self.day_time(t.date(), self.reg))
            if rng.random() < dropout:
                self.churn(self.later(t, 60, 240), comeback=True)
                return
            while True:
                t += rng.expovariate(lam * SEASON_MAX) * DAY
                if t > self.end or rng.random() * SEASON_MAX < season(t.date()):
                    break

    def churn(self, at: datetime, *, comeback: bool) -> None:
        rng = self.rng
        if rng.random() > (0.3 if comeback else 1.0) or at > self.end:
            return
        self.add(c.ChurnCustomer(customer=self.p.ref, churn_reason=rng.choice(texts.CHURN_REASONS),
                                 occurred_at=at, actor=user(self.staff())))  # fmt: skip
        u = rng.random()
        if comeback and u < 0.3:  # buys again: the domain records CustomerWonBack itself
            self.episode(at + (1 + rng.expovariate(1 / 90)) * DAY)
        elif comeback and u < 0.42:  # won back by the account manager, then buys
            back = self.later(at, 20, 120)
            self.add(c.WinBackCustomer(customer=self.p.ref, occurred_at=back,
                                       actor=user(self.staff()), reason="重新签约"))  # fmt: skip
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
            amount = Decimal("0.00")  # a free sample order: real data has them
        order_id = f"SO{next(self.ids.orders):07d}"
        bulk = p.kind is CustomerKind.COMPANY and product.code == "b2b"
        items = [c.LineItemInput(sku=sku, name=name, quantity=rng.randint(1, 20 if bulk else 2))
                 for sku, name in rng.sample(product.items, rng.choice((1, 1, 2, 3)))]  # fmt: skip
        if rng.random() < 0.35:
            self.contact(max(at - rng.uniform(0.05, 3) * DAY, self.reg + MINUTE), Direction.INBOUND)
        self.add(c.RecordPurchase(
            customer=p.ref, order_id=order_id, amount=amount, currency="CNY", items=items,
            product_category=product.code, channel=channel, staff=staff, occurred_at=at,
            actor=user(staff) if staff else CHANNEL_ACTOR[channel],
        ))  # fmt: skip
        if at > self.end:
            return
        self.purchases.append(at)
        self.spent += float(amount)
        self.after_purchase(at, order_id, amount, product.code)

    def after_purchase(self, at: datetime, order_id: str, amount: Decimal, code: str) -> None:
        rng, p, n = self.rng, self.p, len(self.purchases)
        if amount >= 1:
            never = rng.random() < 0.08
            self.grant(at + MINUTE, int(amount), "purchase", None if never else 365)
        if n == 1 and p.category in (Category.POTENTIAL, Category.INTENDED) and rng.random() < 0.6:
            self.add(c.UpdateProfile(customer=p.ref, category=Category.SIGNED,
                                     occurred_at=at + 2 * MINUTE, actor="system:demo"))  # fmt: skip
        if n in (2, 3) or (self.spent > 10_000 and "VIP" not in p.tags_added):
            tag_add = ["复购"] if n == 3 else ["VIP"] if n != 2 else []
            p.tags_added.update(tag_add)
            self.add(c.ChangeTags(customer=p.ref, add=tag_add, remove=["新客"] if n == 2 else [],
                                  occurred_at=at + 3 * MINUTE, actor="system:demo"))  # fmt: skip
        heavy = code in ("appliances", "digital", "b2b", "home")
        if rng.random() < (0.6 if heavy else 0.1):
            self.service(self.later(at, 0.5, 3), ServicePhase.IN_SALE, order_id)
        if rng.random() < (0.2 if heavy else 0.04):
            self.service(self.later(at, 20, 200), ServicePhase.AFTER_SALE, order_id)
        if rng.random() < 0.45:
            due = (at + rng.randint(3, 7) * DAY).date()
            self.care(at + 5 * MINUTE, CareKind.RETURN_VISIT, due, rng.choice(texts.RETURN_VISIT))
        if rng.random() < 0.3:
            self.survey(self.later(at, 0.5, 3), Metric.CSAT, f"CSAT-{order_id}")
        if rng.random() < 0.05 + 0.04 * max(0.0, -p.mood):
            self.complaint(self.later(at, 1, 10))
        if amount >= 1 and rng.random() < 0.04:
            refund = None if rng.random() < 0.5 else (amount * Decimal(rng.uniform(0.1, 0.9)))
            refund = refund.quantize(Decimal("0.01"), "ROUND_DOWN") if refund else None
            self.add(c.RefundPurchase(customer=p.ref, order_id=order_id, amount=refund or None,
                                      currency="CNY", occurred_at=self.later(at, 2, 14),
                                      reason=rng.choice(("七天无理由退货", "质量问题退货", "价格保护")),
                                      actor="api:shop"))  # fmt: skip
        if rng.random() < 0.3:
            points = rng.choice((100, 200, 300, 500, 1000, 2000))
            self.add(c.RedeemPoints(customer=p.ref, points=points, actor="api:app",
                                    reward=rng.choice(texts.REWARDS),
                                    occurred_at=self.later(at, 3, 150)))  # fmt: skip

    def grant(self, at: datetime, points: int, why: str, days: int | None) -> None:
        expires = (at + days * DAY).date() if days else None
        if expires and at <= self.end:
            self.expiries.append(expires)
        self.add(c.GrantPoints(customer=self.p.ref, points=points, reason=why, expires_on=expires,
                               occurred_at=at, actor="system:loyalty"))  # fmt: skip

    def contact(self, at: datetime, direction: Direction | None = None) -> None:
        rng = self.rng
        direction = direction or (Direction.OUTBOUND if rng.random() < 0.6 else Direction.INBOUND)
        staff = self.staff()
        self.add(c.LogContact(
            customer=self.p.ref, channel=pick(rng, texts.CONTACT_CHANNELS), direction=direction,
            summary=texts.contact_summary(direction, rng.randrange(100)),
            outcome=rng.choice(texts.OUTCOMES), staff=staff, occurred_at=at, actor=user(staff),
            feedback=rng.choice(texts.FEEDBACK) if rng.random() < 0.25 else None,
        ))  # fmt: skip

    def service(self, at: datetime, phase: ServicePhase, order_id: str | None) -> None:
        kind, summary = self.rng.choice(texts.SERVICES[phase])
        staff = self.staff()
        self.add(c.RecordService(customer=self.p.ref, phase=phase, kind=kind, summary=summary,
                                 order_id=order_id, staff=staff, occurred_at=at,
                                 actor=user(staff)))  # fmt: skip
        self.services += 1
        if self.rng.random() < 0.25:
            self.survey(self.later(at, 0.2, 2), Metric.CES, f"CES-SV{self.services}")

    def complaint(self, at: datetime) -> None:
        rng, p = self.rng, self.p
        cid = f"CP{next(self.ids.complaints):06d}"
        category = rng.choice(list(texts.COMPLAINTS))
        severity = pick(rng, texts.SEVERITIES)
        p.mood -= 0.5
        self.add(c.FileComplaint(customer=p.ref, complaint_id=cid, category=category,
                                 severity=severity, description=rng.choice(texts.COMPLAINTS[category]),
                                 channel=pick(rng, texts.CONTACT_CHANNELS), occurred_at=at,
                                 actor=user(self.staff())))  # fmt: skip
        if rng.random() < 0.05:
            return  # left open
        for round_ in range(3):
            sla = SLA_HOURS[severity] * 60
            minutes = max(10.0, sla * rng.lognormvariate(math.log(0.5), 0.8))
            if rng.random() < (0.35 if severity.value in ("high", "critical") else 0.1):
                up = at + max(5, int(minutes * 0.3)) * MINUTE
                self.add(c.EscalateComplaint(customer=p.ref, complaint_id=cid, occurred_at=up,
                                             escalated_to=rng.choice(texts.ESCALATE_TO),
                                             actor=user(self.staff())))  # fmt: skip
            at += (int(minutes) + 10) * MINUTE
            comp = Decimal(rng.choice((20, 50, 100, 200))) if rng.random() < 0.2 else None
            self.add(c.ResolveComplaint(customer=p.ref, complaint_id=cid, occurred_at=at,
                                        resolution=rng.choice(texts.RESOLUTIONS), compensation=comp,
                                        compensation_currency="CNY" if comp else None,
                                        actor=user(self.staff())))  # fmt: skip
            if round_ == 2 or rng.random() > 0.1:
                break
            at = self.later(at, 1, 5)  # the problem came back
            self.add(c.ReopenComplaint(customer=p.ref, complaint_id=cid, occurred_at=at,
                                       actor=user(self.staff())))  # fmt: skip
        if rng.random() < 0.6:
            satisfied = rng.random() < (0.75 if at - minutes * MINUTE < at else 0.5)
            note = rng.choice(texts.FOLLOW_UP_NOTES[:2] if satisfied else texts.FOLLOW_UP_NOTES[2:])
            self.add(c.FollowUpComplaint(customer=p.ref, complaint_id=cid, satisfied=satisfied,
                                         note=note, occurred_at=self.later(at, 1, 3),
                                         actor=user(self.staff())))  # fmt: skip
        if rng.random() < 0.4:
            self.survey(self.later(at, 0.2, 2), Metric.CES, f"CES-{cid}")

    def survey(self, at: datetime, metric: Metric, survey_id: str) -> None:
        rng, mood = self.rng, self.p.mood
        score = expectation = performance = None
        if metric is Metric.CSAT:
            score = _scored(rng, CSAT_W, 1, mood)
        elif metric is Metric.NPS:
            score = _scored(rng, NPS_W, 0, mood * 1.5)
        elif metric is Metric.CES:
            score = _scored(rng, CES_W, 1, mood)
        else:
            expectation = rng.choices((4, 5, 6, 7), weights=(1, 3, 4, 2))[0]
            performance = min(7, max(1, expectation + _scored(rng, (1, 2, 3, 4, 2), -3, mood)))
        happy = (score or performance or 0) >= {Metric.NPS: 9, Metric.CES: 5}.get(metric, 4)
        comment = rng.choice(texts.SURVEY_COMMENTS[happy]) if rng.random() < 0.3 else None
        self.add(c.AnswerSurvey(customer=self.p.ref, survey_id=survey_id, metric=metric,
                                score=score, expectation=expectation, performance=performance,
                                comment=comment, channel=rng.choice((Channel.SMS, Channel.WECHAT,
                                                                     Channel.APP, Channel.EMAIL)),
                                occurred_at=at, actor="api:survey"))  # fmt: skip
        if rng.random() < 0.3:
            self.grant(at + MINUTE, 20, "survey", 180)

    def care(self, at: datetime, kind: CareKind, due: date, note: str) -> None:
        rng, staff = self.rng, self.staff()
        tid = f"CT{next(self.ids.tasks):06d}"
        channel = rng.choice((Channel.PHONE, Channel.WECHAT, Channel.SMS))
        self.add(c.ScheduleCareTask(customer=self.p.ref, task_id=tid, kind=kind, due_on=due,
                                    channel=channel, staff=staff, note=note, occurred_at=at,
                                    actor=user(staff)))  # fmt: skip
        u = rng.random()
        if u < 0.82:
            late = rng.random() < 0.18
            day = due + (rng.randint(1, 12) if late else -rng.randint(0, 2)) * DAY
            done = self.day_time(day, at)
            self.add(c.CompleteCareTask(customer=self.p.ref, task_id=tid, occurred_at=done,
                                        outcome=rng.choice(("已联系", "客户满意", "客户提出建议")),
                                        actor=user(staff)))  # fmt: skip
            self.contact(done + MINUTE, Direction.OUTBOUND)
        elif u < 0.92:
            self.add(c.CancelCareTask(customer=self.p.ref, task_id=tid, actor=user(staff),
                                      occurred_at=self.day_time(due - DAY, at)))  # fmt: skip

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
        rng, p = self.rng, self.p
        for year in range(self.reg.year, self.end.year + 1):
            if p.birthday is not None:
                day = date(year, p.birthday.month, min(p.birthday.day, 28))
                if p.owner and rng.random() < 0.7:
                    self.care(self.day_time(day - 7 * DAY, self.reg), CareKind.BIRTHDAY_GREETING,
                              day, "生日祝福并赠送积分")  # fmt: skip
                if rng.random() < 0.5:
                    self.grant(self.day_time(day, self.reg), 200, "birthday", None)
            if p.category in (Category.SIGNED, Category.PARTNER) and rng.random() < 0.6:
                sf = spring_festival(year)
                self.care(self.day_time(sf - 10 * DAY, self.reg), CareKind.HOLIDAY_GREETING,
                          sf - DAY, "春节问候")  # fmt: skip
        if p.kind is CustomerKind.COMPANY:
            t = self.reg + rng.uniform(20, 90) * DAY
            while t < self.end:
                self.care(self.day_time(t.date(), self.reg), CareKind.CHECK_IN,
                          (t + 14 * DAY).date(), "季度客户拜访")  # fmt: skip
                t += rng.uniform(70, 110) * DAY

    def campaigns(self) -> None:
        """Half-yearly NPS and quarterly expectation/performance surveys of buyers."""
        if not self.purchases:
            return
        first, rng = self.purchases[0], self.rng
        for year in range(first.year, self.end.year + 1):
            for half, month in ((1, 1), (2, 7)):
                at = self.day_time(date(year, month, 15) + rng.randint(0, 10) * DAY, first)
                if at > first and rng.random() < 0.3:
                    self.survey(at, Metric.NPS, f"NPS-{year}H{half}")
            for quarter in range(1, 5):
                at = self.day_time(date(year, quarter * 3, 1) + rng.randint(0, 14) * DAY, first)
                if at > first and rng.random() < 0.08:
                    self.survey(at, Metric.GAP, f"GAP-{year}Q{quarter}")

    def profile_changes(self) -> None:
        rng, p = self.rng, self.p
        span = (self.end - self.reg).total_seconds() / 86400
        if rng.random() < 0.12:
            at = self.later(self.reg, 1, max(span, 1))
            phone = f"+86 13{rng.randrange(10)} {rng.randrange(10000):04d} {rng.randrange(10000):04d}"
            self.add(c.UpdateProfile(customer=p.ref, phone=phone, occurred_at=at, actor=user(self.staff())))
        if rng.random() < 0.08:
            owner = f"staff:{rng.choice(STAFF)}"
            self.add(c.AssignOwner(customer=p.ref, owner=owner, actor="user:manager-zhou",
                                   occurred_at=self.later(self.reg, 1, max(span, 1))))  # fmt: skip
        if rng.random() < 0.1:
            tag = rng.choice(("双11", "会员日", "价格敏感", "高潜", "沉默"))
            self.add(c.ChangeTags(customer=p.ref, add=[tag], actor=user(self.staff()),
                                  occurred_at=self.later(self.reg, 1, max(span, 1))))  # fmt: skip
        if rng.random() < 0.06:
            self.add(c.ChangeConsent(customer=p.ref, marketing=False, lawful_basis="withdrawn",
                                     occurred_at=self.later(self.reg, 10, max(span, 10)),
                                     actor="api:app"))  # fmt: skip

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
            self.add(c.ExpirePoints(customer=self.p.ref, occurred_at=at, actor="system:loyalty"))
