"""The touch points of one demo customer: contacts, services, complaints, surveys, care, points.

:class:`Touches` holds one customer's drawn commands and the helpers that time them;
:class:`crm_es.demo.timeline.Life` builds the customer's life on top of it. Every command that
depends on an earlier one (a resolution on its complaint, a completion on its care task) is timed
strictly later, so ordering by business time keeps each dependency satisfied; anything timed at or
before registration or after the end of the period is dropped, together with what depends on it.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from crm_es.demo import texts
from crm_es.demo.population import STAFF, Profile, clock, pick
from crm_es.domain import commands as c
from crm_es.domain.values import SLA_HOURS, CareKind, Channel, Direction, Metric, ServicePhase

C = TypeVar("C", bound=c.CustomerCommand)

MINUTE: Final = timedelta(minutes=1)
DAY: Final = timedelta(days=1)
CSAT_W: Final = (0.06, 0.07, 0.12, 0.33, 0.42)
NPS_W: Final = (0.03, 0.02, 0.03, 0.03, 0.04, 0.07, 0.08, 0.14, 0.2, 0.18, 0.18)
CES_W: Final = (0.04, 0.05, 0.08, 0.15, 0.25, 0.26, 0.17)
GAP_W: Final = (0.1, 0.2, 0.3, 0.4, 0.2)  # performance - expectation, from -3 to +1
SURVEY_CHANNELS: Final = (Channel.SMS, Channel.WECHAT, Channel.APP, Channel.EMAIL)
# How often an unhappy and a happy answer rate each topic: delivery and after-sale draw the
# complaints, product quality and service attitude the praise (so the drivers report has a
# factor to fix first).
TOPIC_W: Final[dict[str, tuple[float, float]]] = {
    "product_quality": (2, 4), "delivery": (4, 2), "price": (3, 2),
    "service_attitude": (1, 3), "after_sale": (3, 1), "other": (1, 1),
}  # fmt: skip
PURCHASE_TOPICS: Final = ("product_quality", "delivery", "price", "service_attitude")
GAP_TOPICS: Final = ("service_attitude", "after_sale", "product_quality")
PHASE_TOPICS: Final = {ServicePhase.PRE_SALE: ("service_attitude",),
                       ServicePhase.IN_SALE: ("delivery",),
                       ServicePhase.AFTER_SALE: ("after_sale",)}  # fmt: skip
COMPLAINT_TOPICS: Final = {"delivery": "delivery", "quality": "product_quality",
                           "service": "service_attitude", "billing": "price",
                           "installation": "after_sale"}  # fmt: skip


class Ids:
    """Demo-wide counters, so order, complaint and task ids are unique across all customers."""

    def __init__(self) -> None:
        self.orders = itertools.count(1)
        self.complaints = itertools.count(1)
        self.tasks = itertools.count(1)


def user(staff: str) -> str:
    """The actor for a staff member: ``staff:li`` -> ``user:li``."""
    return "user:" + staff.rsplit(":", 1)[-1]


def scored(rng: random.Random, weights: tuple[float, ...], low: int, mood: float) -> int:
    """A skewed score on ``low``.. ``low + len(weights) - 1``; mood moves it by about a point."""
    base = rng.choices(range(len(weights)), weights=weights)[0]
    moved = base + round(mood * rng.random() * 1.5)
    return low + min(len(weights) - 1, max(0, moved))


class Touches:
    """One customer's drawn commands, as ``(business time, command)`` in drawing order."""

    def __init__(
        self,
        rng: random.Random,
        profile: Profile,
        register: c.RegisterCustomer,
        end: datetime,
        ids: Ids,
    ) -> None:
        self.rng, self.p, self.end, self.ids = rng, profile, end, ids
        self.reg = profile.registered_at
        self.commands: list[tuple[datetime, c.Command]] = [(self.reg, register)]
        self.services = 0
        self.expiries: list[date] = []  # of granted points, for the monthly expiry job
        self.purchases: list[datetime] = []  # drawn by Life
        self.spent, self.vip = 0.0, False

    # --- helpers ---------------------------------------------------------------------------

    def inside(self, at: datetime) -> bool:
        return self.reg < at <= self.end

    def emit(self, cls: type[C], at: datetime, actor: str, **fields: Any) -> None:
        """Draw a ``cls`` command on this customer at ``at`` (dropped outside the period)."""
        if self.inside(at):
            self.commands.append(
                (at, cls(customer=self.p.ref, occurred_at=at, actor=actor, **fields))
            )

    def staff(self) -> str:
        return self.p.owner or f"staff:{self.rng.choice(STAFF)}"

    def day_time(self, day: date, after: datetime) -> datetime:
        """A business time on ``day``, but at least five minutes after ``after``."""
        return max(clock(self.rng, day), after + 5 * MINUTE)

    def later(self, after: datetime, low: float, high: float) -> datetime:
        """A business time ``low``..``high`` days after ``after`` (at least five minutes later)."""
        return self.day_time((after + self.rng.uniform(low, high) * DAY).date(), after)

    # --- touch points ----------------------------------------------------------------------

    def grant(self, at: datetime, points: int, why: str, days: int | None) -> None:
        expires = (at + days * DAY).date() if days else None
        if expires and self.inside(at):
            self.expiries.append(expires)
        self.emit(
            c.GrantPoints, at, "system:loyalty", points=points, reason=why, expires_on=expires
        )

    def contact(self, at: datetime, direction: Direction | None = None) -> None:
        rng, staff = self.rng, self.staff()
        direction = direction or (Direction.OUTBOUND if rng.random() < 0.6 else Direction.INBOUND)
        self.emit(
            c.LogContact,
            at,
            user(staff),
            channel=pick(rng, texts.CONTACT_CHANNELS),
            direction=direction,
            summary=texts.contact_summary(direction, rng.randrange(100)),
            outcome=rng.choice(texts.OUTCOMES),
            feedback=rng.choice(texts.FEEDBACK) if rng.random() < 0.25 else None,
            staff=staff,
        )

    def service(self, at: datetime, phase: ServicePhase, order_id: str | None) -> None:
        kind, summary = self.rng.choice(texts.SERVICES[phase])
        staff = self.staff()
        self.emit(
            c.RecordService,
            at,
            user(staff),
            phase=phase,
            kind=kind,
            summary=summary,
            order_id=order_id,
            staff=staff,
        )
        self.services += 1
        if self.rng.random() < 0.25:
            at = self.later(at, 0.2, 2)
            self.survey(at, Metric.CES, f"CES-SV{self.services}", PHASE_TOPICS[phase])

    def complaint(self, at: datetime) -> None:
        """File a complaint and draw its handling: escalation, resolution, reopening, follow-up."""
        if not self.inside(at):
            return
        rng, cid = self.rng, f"CP{next(self.ids.complaints):06d}"
        category = rng.choice(list(texts.COMPLAINTS))
        severity = pick(rng, texts.SEVERITIES)
        self.p.mood -= 0.5
        self.emit(
            c.FileComplaint,
            at,
            user(self.staff()),
            complaint_id=cid,
            category=category,
            severity=severity,
            channel=pick(rng, texts.CONTACT_CHANNELS),
            description=rng.choice(texts.COMPLAINTS[category]),
        )
        if rng.random() < 0.05:
            return  # left open
        filed, sla = at, SLA_HOURS[severity] * 60 * MINUTE
        for round_ in range(3):
            took = max(10, round(sla / MINUTE * rng.lognormvariate(math.log(0.5), 0.8))) * MINUTE
            if rng.random() < (0.35 if severity.value in ("high", "critical") else 0.1):
                escalate_to = rng.choice(texts.ESCALATE_TO)
                self.emit(
                    c.EscalateComplaint,
                    at + max(5 * MINUTE, took // 3),
                    user(self.staff()),
                    complaint_id=cid,
                    escalated_to=escalate_to,
                )
            at += took + 10 * MINUTE
            money = Decimal(rng.choice((20, 50, 100, 200))) if rng.random() < 0.2 else None
            self.emit(
                c.ResolveComplaint,
                at,
                user(self.staff()),
                complaint_id=cid,
                resolution=rng.choice(texts.RESOLUTIONS),
                compensation=format(money, "f") if money else None,
                compensation_currency="CNY" if money else None,
            )
            if round_ == 2 or rng.random() > 0.1:
                break
            at = self.later(at, 1, 5)  # the problem came back
            self.emit(c.ReopenComplaint, at, user(self.staff()), complaint_id=cid)
        if rng.random() < 0.6:
            satisfied = rng.random() < (0.8 if at <= filed + sla else 0.45)
            notes = texts.FOLLOW_UP_NOTES[:2] if satisfied else texts.FOLLOW_UP_NOTES[2:]
            self.emit(
                c.FollowUpComplaint,
                self.later(at, 1, 3),
                user(self.staff()),
                complaint_id=cid,
                satisfied=satisfied,
                note=rng.choice(notes),
            )
        if rng.random() < 0.4:
            topic = COMPLAINT_TOPICS.get(category, "other")
            self.survey(self.later(at, 0.2, 2), Metric.CES, f"CES-{cid}", (topic,))

    def survey(
        self, at: datetime, metric: Metric, survey_id: str, topics: tuple[str, ...] = ()
    ) -> None:
        """An answer; rating one of ``topics`` (none: an overall answer)."""
        rng, mood = self.rng, self.p.mood
        score = expectation = performance = None
        if metric is Metric.CSAT:
            score = scored(rng, CSAT_W, 1, mood)
        elif metric is Metric.NPS:
            score = scored(rng, NPS_W, 0, mood * 1.5)
        elif metric is Metric.CES:
            score = scored(rng, CES_W, 1, mood)
        else:
            expectation = rng.choices((4, 5, 6, 7), weights=(1, 3, 4, 2))[0]
            performance = min(7, max(1, expectation + scored(rng, GAP_W, -3, mood)))
        happy = (score or performance or 0) >= {Metric.NPS: 9, Metric.CES: 5}.get(metric, 4)
        topic = None
        if topics:  # from a generator of its own: the main draws stay those of earlier demos
            side = random.Random(f"{self.p.ref}|{survey_id}|{happy}")
            topic = side.choices(topics, weights=[TOPIC_W[t][happy] for t in topics])[0]
        self.emit(
            c.AnswerSurvey,
            at,
            "api:survey",
            survey_id=survey_id,
            metric=metric,
            score=score,
            expectation=expectation,
            performance=performance,
            comment=rng.choice(texts.SURVEY_COMMENTS[happy]) if rng.random() < 0.3 else None,
            channel=rng.choice(SURVEY_CHANNELS),
            topic=topic,
        )
        if rng.random() < 0.3:
            self.grant(at + MINUTE, 20, "survey", 180)

    def care(self, at: datetime, kind: CareKind, due: date, note: str) -> None:
        """Schedule a care task; most are completed (some late), some cancelled, a few forgotten."""
        if not self.inside(at):
            return
        rng, staff = self.rng, self.staff()
        tid = f"CT{next(self.ids.tasks):06d}"
        channel = rng.choice((Channel.PHONE, Channel.WECHAT, Channel.SMS))
        self.emit(
            c.ScheduleCareTask,
            at,
            user(staff),
            task_id=tid,
            kind=kind,
            due_on=due,
            channel=channel,
            staff=staff,
            note=note,
        )
        u = rng.random()
        if u < 0.86:
            late = rng.random() < 0.18
            done = self.day_time(
                due + (rng.randint(1, 12) if late else -rng.randint(0, 2)) * DAY, at
            )
            outcome = rng.choice(("已联系", "客户满意", "客户提出建议"))
            self.emit(c.CompleteCareTask, done, user(staff), task_id=tid, outcome=outcome)
            self.contact(done + MINUTE, Direction.OUTBOUND)
        elif u < 0.95:
            self.emit(c.CancelCareTask, self.day_time(due - DAY, at), user(staff), task_id=tid)
