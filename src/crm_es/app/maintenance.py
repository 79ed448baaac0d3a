"""The nightly job: record the time-driven changes that no command caused.

Points lots pass their expiry and orders leave the rolling 12-month window while nobody touches
the customer. Reports and ``show`` already count both as of any date (a lot past its expiry is
not in the balance, the tier follows the rule); :func:`maintain` writes them into the streams as
``PointsExpired`` and ``TierChanged`` events, so the history says when they happened and
notifications can follow. It also finishes an erasure's wipe left pending by a reader that was
open at the time (:mod:`crm_es.store.wipe`).

Each change is an ordinary command (``expire_points``, ``review_tier``) run through the bulk
path, with a command id made of the day, the customer and the command: running the job twice
on a day, or on two hosts at once, stores every change once (the second run finds nothing due,
or its commands come back as duplicates). The business time of the changes is the START of the
day in the store's time zone: a lot that expired yesterday is gone from today, and the same day
always gives the same command, whenever in the day the job runs.

It then schedules the care the rules make due (:mod:`crm_es.app.care_rules`,
:mod:`crm_es.app.care_maintenance`): greetings, return visits, check-ins and win-back calls, with
command ids made of the rule, the customer and the trigger day, so each task is scheduled once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from uuid import UUID

import msgspec

from crm_es.app.care_maintenance import care_commands, registered_customers
from crm_es.app.care_rules import CareRules, default_rules
from crm_es.app.care_scheduler import CONSENT_RULE
from crm_es.app.results import CommandResult
from crm_es.app.service import CRM
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.decide.envelope import EARLIEST_BUSINESS_TIME
from crm_es.domain.errors import InvalidValue
from crm_es.domain.policy import require
from crm_es.domain.times import Moment, moment
from crm_es.store.wipe import finish_pending_wipe

# Only customers whose streams hold one of these can have a lot to expire or a tier to review.
_CANDIDATE_TOPICS = (ev.PointsGranted.TOPIC, ev.PurchaseRecorded.TOPIC, ev.TierChanged.TOPIC)


class MaintenanceReport(msgspec.Struct, kw_only=True):
    day: str  # the day the changes are recorded for, in the store's time zone
    customers_checked: int = 0
    points_expired: int = 0  # customers whose expired lots were recorded as expired
    tiers_changed: int = 0
    duplicates: int = 0  # already recorded by another run
    # Care tasks newly scheduled, per rule (every enabled rule listed, 0 included).
    care_scheduled: dict[str, int] = {}
    greetings_cancelled: int = 0  # open greetings of customers who withdrew marketing consent
    care_skipped: dict[str, str] = {}  # enabled rules that could not run, and why
    erasure_wipe: str = "none pending"  # or "finished", or "still pending" (an old reader)
    errors: list[str] = []


def maintenance_day(app: CRM, at: Moment = None) -> date:
    """The day ``at`` (default: today) falls on in the store's time zone, checked: not after
    today and not before 1900."""
    tz = app.store.timezone
    now = app.clock()
    chosen = moment("at", at, tz=tz) or now
    day = chosen.astimezone(tz).date()
    if day > now.astimezone(tz).date():
        raise InvalidValue("at", str(at), "is after today: time-driven changes happen by today")
    if datetime.combine(day, time(), tz) < EARLIEST_BUSINESS_TIME:
        raise InvalidValue("at", str(at), "is before 1900")
    return day


def due_commands(customer: Customer, day: date, start: datetime) -> list[cmd.Command]:
    """The maintenance commands ``customer`` needs on ``day`` (starting at ``start``). Nothing
    is due for a customer registered later, nor of a kind whose history already holds a fact
    after ``start`` (a purchase earlier today reviewed the tier itself; a past day cannot
    judge what came after it)."""
    due: list[cmd.Command] = []
    kinds: list[type[cmd.ExpirePoints | cmd.ReviewTier]] = []
    if customer.registered_at > start:
        return due
    if not _after(customer.points_since, start) and any(
        lot.remaining > 0 and lot.expires_on and lot.expires_on < day for lot in customer.lots
    ):
        kinds.append(cmd.ExpirePoints)
    if not _after(customer.tier_since, start) and customer.tier_at(start) != customer.tier:
        kinds.append(cmd.ReviewTier)
    for kind in kinds:
        name = cmd.command_type_name(kind)
        due.append(
            kind(
                customer=str(customer.id),
                occurred_at=start,
                command_id=f"maintain:{day.isoformat()}:{customer.id}:{name}",
            )
        )
    return due


def day_start(app: CRM, day: date) -> datetime:
    """The start of ``day`` in the store's time zone: the business time of the changes."""
    return datetime.combine(day, time(), app.store.timezone)


def _after(since: datetime | None, start: datetime) -> bool:
    return since is not None and since > start


def candidates(app: CRM) -> list[UUID]:
    """Customers that may have something due, in id order."""
    store = app.store
    marks = ", ".join("?" * len(_CANDIDATE_TOPICS))
    with store.db.reading() as tx:
        rows = tx.query(
            f"SELECT DISTINCT originator_id FROM {store.events_table} WHERE topic IN ({marks})",
            _CANDIDATE_TOPICS,
        )
    return sorted(UUID(str(r[0])) for r in rows)


def customers_to_check(app: CRM, care: CareRules | None = None) -> list[UUID]:
    """The customers :func:`maintain` loads: all of them when a care rule is on (default
    rules: yes), else those that may have a lot to expire or a tier to review."""
    rules = default_rules() if care is None else care
    return registered_customers(app.store) if rules.enabled() else candidates(app)


def maintain(
    app: CRM,
    at: Moment = None,
    progress: Callable[[int], None] | None = None,
    care: CareRules | None = None,
    at_risk: Mapping[UUID, date] | None = None,
) -> MaintenanceReport:
    """Record every expiry and tier change due by the day of ``at`` (default: today) and
    schedule the care tasks ``care`` (default: the shipped rules) make due on that day.

    ``at_risk``: the at-risk, high-value customers as of the start of the day, with the day
    each became at risk (:func:`crm_es.reports.facts.care_targets.load_at_risk_high_value`,
    which ``crm-es maintain`` calls): the win-back rule needs the population, which this room
    does not read. Without it that rule is skipped, and ``care_skipped`` says so."""
    require(app, "maintain")
    rules = default_rules() if care is None else care
    day = maintenance_day(app, at)
    tz = app.store.timezone
    start = day_start(app, day)
    report = MaintenanceReport(day=day.isoformat())
    if rules.rule("win_back") is not None and at_risk is None:
        rules = msgspec.structs.replace(rules, win_back=None)
        report.care_skipped["win_back"] = (
            "needs the at-risk customers of the population "
            "(crm_es.reports.facts.care_targets.load_at_risk_high_value)"
        )
    report.care_scheduled = dict.fromkeys(rules.enabled(), 0)
    wiped = finish_pending_wipe(app.store.db)
    if wiped is not None:
        report.erasure_wipe = "finished" if wiped else "still pending"
    ids = customers_to_check(app, rules)
    targets = at_risk or {}
    care_rule: dict[str, str] = {}  # command id -> the care rule that made it

    def commands() -> Iterator[cmd.Command]:
        for customer_id in ids:
            customer = app.store.load(customer_id)
            report.customers_checked += 1
            if progress is not None:
                progress(1)
            if customer is not None and customer.merged_into is None:  # closed: takes none
                yield from due_commands(customer, day, start)
                for rule, command in care_commands(customer, rules, day, start, tz, targets):
                    care_rule[str(command.command_id)] = rule
                    yield command

    sent: list[cmd.Command] = []

    def tracked() -> Iterator[cmd.Command]:
        for command in commands():
            sent.append(command)
            yield command

    for number, outcome in enumerate(app.execute_many(tracked())):
        command = sent[number]
        if not isinstance(outcome, CommandResult):
            report.errors.append(f"{command.command_id}: {outcome}")
        elif outcome.duplicate:
            report.duplicates += 1
        elif outcome.events and str(command.command_id) in care_rule:
            rule = care_rule[str(command.command_id)]
            if rule == CONSENT_RULE:
                report.greetings_cancelled += 1
            else:
                report.care_scheduled[rule] += 1
        elif outcome.events and isinstance(command, cmd.ExpirePoints):
            report.points_expired += 1
        elif outcome.events:
            report.tiers_changed += 1
    return report
