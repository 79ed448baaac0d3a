"""``crm-es maintain`` schedules the care the rules make due, once, on SQLite and PostgreSQL:
each rule on a hand-made population with a fixed clock, a second run that stores nothing, two
processes at once that schedule each task once, and consent respected by the rules, the agenda
and the cancellations."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from crm_es import CRM
from crm_es.app.care_maintenance import high_value
from crm_es.app.care_rules import CareRules, parse_rules
from crm_es.app.maintenance import MaintenanceReport, day_start, maintain, maintenance_day
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.reports.api import Reports
from crm_es.reports.facts.care_targets import HighValue, load_at_risk_high_value
from tests.helpers.cli import run as cli
from tests.helpers.clock import Clock

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # the maintenance day is 2026-06-10
RULES_TEXT = """
version = 1
catch_up_days = 30
[birthday_greeting]
days_ahead = 7
[holiday_greeting]
days_ahead = 7
holidays = [{ date = 2026-06-15, name = "店庆" }]
[first_purchase_visit]
days_after = 7
[large_purchase_visit]
days_after = 3
min_amount = "5000.00"
[complaint_visit]
days_after = 2
[check_in]
days_silent = 90
[win_back]
high_value = "top_monetary_quintile"
days_to_act = 3
"""
RULES = parse_rules(RULES_TEXT)
# By hand, for 2026-06-10 (UTC store): (ref, task id, kind, due on).
EXPECTED = [
    ("B1", "care:birthday_greeting:2026-06-14", "birthday_greeting", "2026-06-14"),
    ("B1", "care:holiday_greeting:2026-06-15", "holiday_greeting", "2026-06-15"),
    ("K1", "care:complaint_visit:2026-06-08", "return_visit", "2026-06-10"),  # 06-08 + 2
    ("P1", "care:first_purchase_visit:2026-06-05", "return_visit", "2026-06-12"),
    ("P2", "care:large_purchase_visit:2026-06-08", "return_visit", "2026-06-11"),
    ("S1", "care:check_in:2026-05-02", "check_in", "2026-06-10"),  # contact 02-01 + 90
    ("W1", "care:check_in:2026-03-01", "check_in", "2026-06-10"),  # purchase 2025-12-01 + 90
    # One-time buyer: at risk after 0.5 × 270 = 135 silent days, from 2025-12-01 + 136.
    ("W1", "care:win_back:2026-04-16", "check_in", "2026-06-13"),
    ("W2", "care:check_in:2026-03-01", "check_in", "2026-06-10"),
]
COUNTS = {"birthday_greeting": 1, "holiday_greeting": 1, "first_purchase_visit": 1,
          "large_purchase_visit": 1, "complaint_visit": 1, "check_in": 3, "win_back": 1}  # fmt: skip


def t(day: str, time: str = "10:00") -> str:
    return f"{day}T{time}:00+00:00"


def populate(crm: CRM) -> None:
    """Nine customers of staff:li, one or none per rule (see EXPECTED)."""

    def register(ref: str, at: str = "2026-04-01", **fields: Any) -> None:
        crm.register_customer(external_ref=ref, owner="staff:li", occurred_at=t(at), **fields)

    for ref in ("B1", "B2", "B3"):  # birthday 06-14: consent given, never given, withdrawn
        register(ref, birthday="1990-06-14")
    crm.change_consent(customer="B1", marketing=True, occurred_at=t("2026-04-02"))
    crm.change_consent(customer="B3", marketing=True, occurred_at=t("2026-04-02"))
    crm.change_consent(customer="B3", marketing=False, occurred_at=t("2026-05-01"))
    register("P1")  # a first purchase five days ago
    crm.record_purchase(customer="P1", order_id="O1", amount="100", currency="CNY",
                        occurred_at=t("2026-06-05"))  # fmt: skip
    register("P2")  # an old first purchase, then a large one
    crm.record_purchase(customer="P2", order_id="O1", amount="100", currency="CNY",
                        occurred_at=t("2026-04-10"))  # fmt: skip
    crm.record_purchase(customer="P2", order_id="O2", amount="8000", currency="CNY",
                        occurred_at=t("2026-06-08"))  # fmt: skip
    register("K1")  # an old purchase, a complaint resolved two days ago
    crm.record_purchase(customer="K1", order_id="O1", amount="200", currency="CNY",
                        occurred_at=t("2026-05-01"))  # fmt: skip
    crm.file_complaint(customer="K1", complaint_id="K-1", category="delivery", severity="high",
                       occurred_at=t("2026-06-01"))  # fmt: skip
    crm.resolve_complaint(customer="K1", complaint_id="K-1", resolution="refunded",
                          occurred_at=t("2026-06-08"))  # fmt: skip
    register("S1", "2026-01-01")  # contacted once, long ago
    crm.log_contact(customer="S1", channel="phone", direction="outbound",
                    occurred_at=t("2026-02-01"))  # fmt: skip
    for ref, amount in (("W1", "50000"), ("W2", "50")):  # at risk: high value, low value
        register(ref, "2025-11-01")
        crm.record_purchase(customer=ref, order_id="O1", amount=amount, currency="CNY",
                            occurred_at=t("2025-12-01"))  # fmt: skip


def run(crm: CRM, rules: CareRules = RULES) -> MaintenanceReport:
    """``maintain`` as ``crm-es maintain`` runs it: with the at-risk population."""
    win_back, at_risk = rules.rule("win_back"), None
    if win_back is not None:
        currency, least = high_value(win_back)
        start = day_start(crm, maintenance_day(crm))
        at_risk = load_at_risk_high_value(crm.store, start, HighValue(currency=currency,
                                                                     min_net_spend=least))  # fmt: skip
    return maintain(crm, care=rules, at_risk=at_risk)


def scheduled(crm: CRM) -> list[tuple[str, str, str, str]]:
    """Every CareTaskScheduled in the store: (ref, task id, kind, due on), sorted."""
    found = []
    for ref in ("B1", "B2", "B3", "P1", "P2", "K1", "S1", "W1", "W2"):
        for e in crm.history(ref):
            if isinstance(e, ev.CareTaskScheduled):
                found.append((ref, e.task_id, str(e.kind), e.due_on.isoformat()))
    return sorted(found)


def test_each_rule_schedules_its_task_by_hand_and_a_second_run_schedules_nothing(
    store_url: str,
) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        populate(crm)
        report = run(crm)
        assert report.errors == []
        assert report.care_scheduled == COUNTS
        assert scheduled(crm) == EXPECTED
        head = crm.store.head()
        again = run(crm)
        assert again.care_scheduled == dict.fromkeys(COUNTS, 0)
        assert (again.errors, again.duplicates, crm.store.head()) == ([], 0, head)
        assert scheduled(crm) == EXPECTED
        # The task goes to the owner, recorded at the start of the day, with its rule named.
        b1 = crm.get_customer("B1").care_tasks["care:birthday_greeting:2026-06-14"]
        assert (b1.staff, b1.scheduled_at) == ("staff:li", datetime(2026, 6, 10, tzinfo=UTC))


def test_high_value_by_net_spend_picks_the_customers_over_the_amount(store_url: str) -> None:
    text = RULES_TEXT.replace('"top_monetary_quintile"', '"min_net_spend"\nmin_net_spend = "50"')
    with CRM(store_url, clock=Clock(NOW)) as crm:
        populate(crm)
        report = run(crm, parse_rules(text))
        assert report.care_scheduled["win_back"] == 2  # W1 (50000) and W2 (exactly 50)
        assert [s for s in scheduled(crm) if "win_back" in s[1]] == [
            ("W1", "care:win_back:2026-04-16", "check_in", "2026-06-13"),
            ("W2", "care:win_back:2026-04-16", "check_in", "2026-06-13"),
        ]


def test_greetings_follow_consent_in_the_agenda_and_are_cancelled_the_next_night(
    store_url: str,
) -> None:
    clock = Clock(NOW)
    with CRM(store_url, clock=clock) as crm:
        populate(crm)
        run(crm)
        with Reports(crm) as reports:
            before = reports.agenda("2026-06-10")
        ids = {(i.external_ref, i.task_id) for i in before.care_tasks_due}
        assert ("B1", "care:birthday_greeting:2026-06-14") in ids
        # B3 withdrew consent: no greeting scheduled, its birthday not on the agenda; B2 never
        # gave consent: nothing scheduled, its birthday stays (nothing was withdrawn).
        assert {b.external_ref for b in before.birthdays} == {"B1", "B2"}
        assert before.counts.withheld_without_consent == 1
        crm.change_consent(customer="B1", marketing=False, occurred_at=t("2026-06-10", "11:00"))
        with Reports(crm) as reports:
            after = reports.agenda("2026-06-10")
            earlier = reports.agenda("2026-06-10T10:00:00+00:00")  # before the withdrawal
        assert {i.external_ref for i in after.care_tasks_due} == {"K1", "P1", "P2", "S1", "W1",
                                                                   "W2"}  # fmt: skip
        assert {b.external_ref for b in after.birthdays} == {"B2"}
        assert after.counts.withheld_without_consent == 4  # 2 greetings, 2 birthdays
        assert after.counts.care_tasks_due == before.counts.care_tasks_due - 2
        assert earlier.counts.care_tasks_due == before.counts.care_tasks_due
        with Reports(crm) as reports:  # ten days on, before any cancellation is recorded
            agenda, kpi = reports.agenda("2026-06-20"), reports.kpi("2026-06-20")
        overdue = {i.external_ref for i in agenda.care_tasks_overdue}
        assert "B1" not in overdue and len(overdue) == 6
        assert agenda.counts.care_tasks_overdue == sum(o.care_tasks_overdue for o in kpi.owners)
        # The same night's job waits (the withdrawal came after its start); the next one
        # cancels both greetings, once.
        assert run(crm).greetings_cancelled == 0
        clock.now = datetime(2026, 6, 11, 12, 0, tzinfo=UTC)
        assert run(crm).greetings_cancelled == 2
        assert run(crm).greetings_cancelled == 0
        tasks = crm.get_customer("B1").care_tasks
        assert {k: v.status for k, v in tasks.items()} == {
            "care:birthday_greeting:2026-06-14": "cancelled",
            "care:holiday_greeting:2026-06-15": "cancelled",
        }
        cancels = [e for e in crm.history("B1") if isinstance(e, ev.CareTaskCancelled)]
        assert [e.reason for e in cancels] == ["marketing consent withdrawn"] * 2


def test_without_the_population_the_win_back_rule_is_skipped_and_says_why(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        populate(crm)
        report = maintain(crm, care=RULES)
        assert report.care_scheduled == {k: v for k, v in COUNTS.items() if k != "win_back"}
        assert list(report.care_skipped) == ["win_back"]
        assert "load_at_risk_high_value" in report.care_skipped["win_back"]
        assert scheduled(crm) == [s for s in EXPECTED if "win_back" not in s[1]]


def test_without_care_rules_maintain_schedules_no_care(store_url: str) -> None:
    with CRM(store_url, clock=Clock(NOW)) as crm:
        populate(crm)
        report = run(crm, parse_rules("version = 1"))
        assert (report.care_scheduled, scheduled(crm)) == ({}, [])


# --- two processes at once ----------------------------------------------------------------------

CUSTOMERS = 40
DAY = "2026-06-10"


def crowd(url: str) -> None:
    """Customers with consent and a birthday on 06-12, never contacted since January: with
    the shipped rules each is due a birthday greeting, the 端午节 (06-19) greeting and a
    check-in on 2026-06-10."""
    registered = datetime.fromisoformat(t("2026-01-01"))
    consented = datetime.fromisoformat(t("2026-01-02"))
    commands: list[cmd.Command] = []
    for n in range(CUSTOMERS):
        ref = f"M-{n:03d}"
        commands += [
            cmd.RegisterCustomer(external_ref=ref, birthday=date(1985, 6, 12),
                                 owner="staff:wang", occurred_at=registered),
            cmd.ChangeConsent(customer=ref, marketing=True, occurred_at=consented),
        ]  # fmt: skip
    with CRM(url) as crm:
        assert all(not isinstance(o, Exception) for o in crm.execute_many(commands))


def maintain_process(url: str, rules: Path | None) -> subprocess.Popen[str]:
    extra = [] if rules is None else ["--care-rules", str(rules)]
    return subprocess.Popen(
        [sys.executable, "-m", "crm_es.cli", "--db", url, "maintain", "--at", DAY, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_at_once_schedule_each_task_once(store_url: str, tmp_path: Path) -> None:
    # One process runs the shipped rules, the other a file with the same three rules on: the
    # same commands (ids and payloads) from either path.
    path = tmp_path / "rules.toml"
    path.write_text(
        "version = 1\n[birthday_greeting]\ndays_ahead = 7\n[holiday_greeting]\ndays_ahead = 10\n"
        'holidays = [{ date = 2026-06-19, name = "端午节" }]\n[check_in]\ndays_silent = 90\n',
        encoding="utf-8",
    )
    crowd(store_url)
    processes = [maintain_process(store_url, None), maintain_process(store_url, path)]
    outputs = [p.communicate(timeout=60) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    per_rule: Counter[str] = Counter()
    for report in reports:
        assert report["errors"] == []
        per_rule.update(report["care_scheduled"])
    assert {k: v for k, v in per_rule.items() if v} == {
        "birthday_greeting": CUSTOMERS, "holiday_greeting": CUSTOMERS, "check_in": CUSTOMERS,
    }  # fmt: skip
    with CRM(store_url) as crm:
        for n in range(CUSTOMERS):
            events = [e for e in crm.history(f"M-{n:03d}") if isinstance(e, ev.CareTaskScheduled)]
            assert sorted(e.task_id for e in events) == [
                "care:birthday_greeting:2026-06-12", "care:check_in:2026-04-01",
                "care:holiday_greeting:2026-06-19",
            ]  # fmt: skip


def test_two_runs_that_decided_on_the_same_state_schedule_each_task_once(store_url: str) -> None:
    """The processes above rarely overlap on SQLite (one takes the write lock and finishes
    before the other has read anything): here two runs, each with a connection of its own,
    both load the first customer before either stores a task, so both decide the same tasks
    from the same state and the store must keep one of each."""
    import threading

    crowd(store_url)
    rules = parse_rules(
        "version = 1\n[birthday_greeting]\ndays_ahead = 7\n[check_in]\ndays_silent = 90\n"
    )
    both_loaded = threading.Barrier(2, timeout=30)
    reports: list[MaintenanceReport] = []
    failures: list[BaseException] = []

    def night() -> None:
        first = [True]

        def progress(_: int) -> None:
            if first[0]:
                first[0] = False
                both_loaded.wait()

        try:
            with CRM(store_url) as crm:
                reports.append(maintain(crm, DAY, progress=progress, care=rules))
        except BaseException as e:  # the assertion below names it
            failures.append(e)

    threads = [threading.Thread(target=night) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and len(reports) == 2
    assert [r.errors for r in reports] == [[], []]
    per_rule: Counter[str] = Counter()
    for report in reports:
        per_rule.update(report.care_scheduled)
    assert dict(per_rule) == {"birthday_greeting": CUSTOMERS, "check_in": CUSTOMERS}
    assert sum(r.duplicates for r in reports) >= 2  # the first customer's two, at least
    with CRM(store_url) as crm:
        for n in range(CUSTOMERS):
            events = [e for e in crm.history(f"M-{n:03d}") if isinstance(e, ev.CareTaskScheduled)]
            assert sorted(e.task_id for e in events) == [
                "care:birthday_greeting:2026-06-12", "care:check_in:2026-04-01",
            ]  # fmt: skip


def test_the_command_line_names_a_bad_rules_file_and_prints_counts_per_rule(
    store_url: str, tmp_path: Path
) -> None:
    crowd(store_url)
    bad = tmp_path / "rules.toml"
    bad.write_text('version = 1\n[check_in]\ndays_silent = "90"\n', encoding="utf-8")
    code, out, err = cli(store_url, "maintain", "--at", DAY, "--care-rules", str(bad))
    assert (code, out) == (1, "")
    assert err.strip() == (
        f"Error: {bad}: Expected `int`, got `str` - at `$.check_in.days_silent`: allowed a "
        "whole number from 1 to 3660"
    )
    bad.write_text("version = 1\n[check_in]\ndays_silent = 90\n", encoding="utf-8")
    code, out, err = cli(store_url, "maintain", "--at", DAY, "--care-rules", str(bad))
    assert code == 0, err
    report = json.loads(out)
    assert (report["care_scheduled"], report["care_skipped"]) == ({"check_in": CUSTOMERS}, {})
