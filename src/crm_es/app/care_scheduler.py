"""Which care tasks the rules make due for one customer on a maintenance day: pure selection.

Input: the customer's state, the rules (:mod:`crm_es.app.care_rules`), the maintenance day and
its start in the store's time zone, and (for the win-back rule, which needs the whole
population) the day the customer became at risk if they are an at-risk, high-value customer.
Output: the tasks to schedule, each with an id made of the rule and the day that triggered it.

Only facts that occurred by the START of the day count, as for the rest of the nightly job: the
same day always gives the same tasks whenever the job runs, and the tasks are recorded at that
start. A task id the customer already holds (in any state: done, cancelled) is never proposed
again, so running twice schedules nothing twice, and a task done by hand stays done.

Greetings need marketing consent as it stood at the start of the day (given, and not changed
since); the same rule cancels open greeting tasks of customers who withdrew it.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, tzinfo
from typing import Final
from uuid import UUID

import msgspec

from crm_es.app.care_rules import CareRules
from crm_es.domain.birthdays import next_birthday
from crm_es.domain.customer import Customer
from crm_es.domain.times import business_day
from crm_es.domain.values import CareKind, Money

# The kind each rule schedules. A win-back call is a check-in with a purpose (there is no care
# kind of its own); its task id and note say which rule made it.
RULE_KINDS: Final[dict[str, CareKind]] = {
    "birthday_greeting": CareKind.BIRTHDAY_GREETING,
    "holiday_greeting": CareKind.HOLIDAY_GREETING,
    "first_purchase_visit": CareKind.RETURN_VISIT,
    "large_purchase_visit": CareKind.RETURN_VISIT,
    "complaint_visit": CareKind.RETURN_VISIT,
    "check_in": CareKind.CHECK_IN,
    "win_back": CareKind.CHECK_IN,
}
GREETINGS: Final = frozenset({CareKind.BIRTHDAY_GREETING, CareKind.HOLIDAY_GREETING})
CONSENT_RULE: Final = "consent"  # names the cancellations of greetings without consent


class DueTask(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    kind: CareKind
    task_id: str
    trigger: date  # the day that made it due: the birthday, the purchase, the resolution...
    due_on: date
    note: str


def task_id(rule: str, trigger: date) -> str:
    """The task's id in the customer's stream: one task per rule and trigger day."""
    return f"care:{rule}:{trigger.isoformat()}"


def schedule_command_id(rule: str, customer_id: UUID, trigger: date) -> str:
    """The idempotency key of scheduling: the same on every run and every host."""
    return f"care:{rule}:{customer_id}:{trigger.isoformat()}"


def cancel_command_id(customer_id: UUID, task: str) -> str:
    """The idempotency key of cancelling ``task`` for want of consent (task ids may be 128
    characters long, hence the digest)."""
    digest = hashlib.sha256(task.encode()).hexdigest()[:24]
    return f"care:{CONSENT_RULE}:{customer_id}:{digest}"


def consent_at_start(customer: Customer, start: datetime) -> bool | None:
    """Marketing consent as it stood at ``start``: None when never given or withdrawn, or
    when it changed later (tomorrow's run decides on it, in order of business time)."""
    if customer.changed_since("consent", start):
        return None
    return customer.marketing_consent


def due_care_tasks(
    customer: Customer,
    rules: CareRules,
    day: date,
    start: datetime,
    tz: tzinfo,
    at_risk_since: date | None = None,
) -> list[DueTask]:
    """The tasks ``rules`` make due for ``customer`` on ``day`` (starting at ``start``, in
    zone ``tz``) that the customer does not hold yet, in rule order."""
    if customer.erased or customer.registered_at > start:
        return []
    found: list[DueTask] = []
    since = day - timedelta(days=rules.catch_up_days)  # older triggers are history
    greet = consent_at_start(customer, start) is True

    def add(rule: str, trigger: date, due_on: date, note: str) -> None:
        found.append(
            DueTask(rule=rule, kind=RULE_KINDS[rule], task_id=task_id(rule, trigger),
                    trigger=trigger, due_on=max(due_on, day), note=note)
        )  # fmt: skip

    birthday = rules.rule("birthday_greeting")
    if birthday is not None and greet and customer.birthday:
        upcoming = next_birthday(customer.birthday[5:10], day)
        if (upcoming - day).days <= birthday.days_ahead:
            add("birthday_greeting", upcoming, upcoming, f"birthday greeting on {upcoming}")
    holiday = rules.rule("holiday_greeting")
    if holiday is not None and greet:
        for h in holiday.holidays:
            if 0 <= (h.date - day).days <= holiday.days_ahead:
                add("holiday_greeting", h.date, h.date, f"{h.name} greeting on {h.date}")

    orders = [o for o in customer.orders.values() if o.occurred_at <= start]
    first = min((business_day(o.occurred_at, tz) for o in orders), default=None)
    visit = rules.rule("first_purchase_visit")
    if visit is not None and first is not None and first >= since:
        due = first + timedelta(days=visit.days_after)
        add("first_purchase_visit", first, due, f"return visit after the first purchase on {first}")
    large = rules.rule("large_purchase_visit")
    if large is not None:
        least = Money.parse(large.min_amount, large.currency).minor
        days = {
            business_day(o.occurred_at, tz)
            for o in orders
            if o.currency == large.currency and o.amount >= least
        }
        for d in sorted(days):
            if d >= since and not (visit is not None and d == first):
                due = d + timedelta(days=large.days_after)
                add("large_purchase_visit", d, due, f"return visit after a large purchase on {d}")
    complaint = rules.rule("complaint_visit")
    if complaint is not None:
        resolved = {
            business_day(c.resolved_at, tz)
            for c in customer.complaints.values()
            if c.status == "resolved" and c.resolved_at is not None and c.resolved_at <= start
        }
        for d in sorted(resolved):
            if d >= since:
                due = d + timedelta(days=complaint.days_after)
                add("complaint_visit", d, due, f"return visit after the complaint resolved on {d}")

    check_in = rules.rule("check_in")
    if check_in is not None and not customer.churned:
        # A logged contact or a purchase is being in touch; never either: since registering.
        touches = (customer.last_contact_at, customer.last_purchase_at, customer.registered_at)
        last = max(t for t in touches if t is not None)
        trigger = business_day(last, tz) + timedelta(days=check_in.days_silent)
        if last <= start and trigger <= day:
            add("check_in", trigger, day, f"not contacted since {business_day(last, tz)}")
    win_back = rules.rule("win_back")
    if win_back is not None and at_risk_since is not None and not customer.churned:
        due = day + timedelta(days=win_back.days_to_act)
        add("win_back", at_risk_since, due, f"win back: at risk since {at_risk_since}, high value")

    unique = {t.task_id: t for t in found if t.task_id not in customer.care_tasks}
    return list(unique.values())


def greetings_without_consent(customer: Customer, start: datetime) -> list[str]:
    """Ids of the open greeting tasks (due or overdue) of a customer who had withdrawn
    marketing consent by ``start``, scheduled by then: they must not be sent."""
    if customer.marketing_consent is not False or customer.changed_since("consent", start):
        return []
    return sorted(
        tid
        for tid, task in customer.open_care_tasks().items()
        if task.kind in GREETINGS and (task.scheduled_at is None or task.scheduled_at <= start)
    )
