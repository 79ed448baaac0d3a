"""The vectorised segments and churn reports equal a straightforward per-customer computation.

The reference below is the reports' original per-customer implementation (one
``PurchaseHistory`` per customer, ``rule_status``, ``score_rfm`` on Decimal inputs): the
population-wide path must give byte-identical JSON on a random population, on both stores.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pytest

from crm_es import CRM
from crm_es.analytics.bgnbd import expected_purchases, fit_bgnbd, p_alive
from crm_es.analytics.churn_rule import ChurnRule
from crm_es.analytics.rfm import (
    CN8_MAP_VERSION,
    CN8_THRESHOLD_RULE,
    RF_GRID_VERSION,
    RfmInput,
    score_rfm,
)
from crm_es.domain import commands as cmd
from crm_es.domain.values import TIER_CURRENCY, currency_exponent
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports.churn import (
    MIN_CUSTOMERS_TO_FIT,
    MIN_T_DAYS,
    UNIT_DAYS,
    BgNbdFit,
    ChurnReport,
    CustomerChurn,
    churn_report,
)
from crm_es.reports.facts.population import LIFECYCLE_STAGES
from crm_es.reports.facts.purchase_history import (
    load_churn_facts,
    load_customers,
    load_purchase_histories,
)
from crm_es.reports.query import ReportQuery
from crm_es.reports.segments import CustomerSegment, SegmentsReport, segments_report
from tests.helpers.report_oracles import (
    churn_threshold_days,
    is_won_back,
    lifecycle_stage,
    return_day,
    rule_status,
)

START = datetime(2024, 1, 1, 9, tzinfo=UTC)
END = datetime(2025, 12, 1, tzinfo=UTC)


def reference_segments(
    tx: Any, tables: dict[str, str], query: ReportQuery, currency: str = TIER_CURRENCY
) -> SegmentsReport:
    rule = ChurnRule()
    customers = load_customers(tx, tables, query)
    histories = load_purchase_histories(tx, tables, query, currency)
    churn = load_churn_facts(tx, tables, query)
    as_of = query.reference_date
    exponent = currency_exponent(currency)
    inputs = [
        RfmInput(cid, h.days[-1], len(h.days), Decimal(h.net_spend).scaleb(-exponent))
        for cid, h in histories.items()
        if cid in customers and h.days
    ]
    scores = {s.customer_id: s for s in score_rfm(inputs, as_of)}
    rows = []
    for cid, c in customers.items():
        history, score, facts = histories.get(cid), scores.get(cid), churn.get(cid)
        days = len(history.days) if history else 0
        spend = history.net_spend if history else 0
        status = rule_status(history, facts, as_of, rule)
        rows.append(
            CustomerSegment(
                customer_id=cid, external_ref=c.external_ref, owner=c.owner, region=c.region,
                tier=c.tier,
                lifecycle=lifecycle_stage(status, is_won_back(history, facts, as_of, rule), days,
                                          score, c.tier),
                rfm=score.code if score else None, segment=score.segment if score else None,
                segment_cn=score.segment_cn if score else None,
                recency_days=score.recency_days if score else None, frequency=days,
                monetary=f"{Decimal(spend).scaleb(-exponent):.{exponent}f}",
            )
        )  # fmt: skip
    return SegmentsReport(
        as_of=query.as_of_iso, known_at=query.known_at_iso, currency=currency,
        grid_version=RF_GRID_VERSION, cn_map_version=CN8_MAP_VERSION,
        cn_threshold_rule=CN8_THRESHOLD_RULE,
        other_currency_purchases=other_currencies(tx, tables, query, currency),
        segment_sizes=dict(sorted(Counter(r.segment for r in rows if r.segment).items())),
        segment_cn_sizes=dict(sorted(Counter(r.segment_cn for r in rows if r.segment_cn).items())),
        lifecycle_sizes={s: sum(1 for r in rows if r.lifecycle == s) for s in LIFECYCLE_STAGES},
        customers=rows,
    )  # fmt: skip


def _text(day: date | None) -> str | None:
    return day.isoformat() if day else None


def other_currencies(
    tx: Any, tables: dict[str, str], query: ReportQuery, currency: str
) -> dict[str, int]:
    cut, params = query.cut()
    counts: Counter[str] = Counter(
        str(r[0])
        for r in tx.query(f"SELECT currency FROM {tables['purchases']} WHERE {cut}", params)
    )
    return {c: n for c, n in sorted(counts.items()) if c != currency}


def reference_churn(
    tx: Any, tables: dict[str, str], query: ReportQuery, time_unit: str = "week"
) -> ChurnReport:
    rule, unit, horizon = ChurnRule(), UNIT_DAYS[time_unit], 90
    as_of = query.reference_date
    customers = load_customers(tx, tables, query)
    histories = load_purchase_histories(tx, tables, query, TIER_CURRENCY)
    facts = load_churn_facts(tx, tables, query)
    ids = [cid for cid in customers if (h := histories.get(cid)) and h.days]
    days = [histories[c].days for c in ids]
    xs = np.array([len(d) - 1 for d in days], dtype=np.float64)
    t_xs = np.array([(d[-1] - d[0]).days for d in days], float) / unit
    ts = np.array([max((as_of - d[0]).days, MIN_T_DAYS) for d in days], dtype=np.float64) / unit
    fit, alive, expected = None, [None] * len(ids), [None] * len(ids)
    if len(ids) >= MIN_CUSTOMERS_TO_FIT:
        params = fit_bgnbd(xs, t_xs, ts)
        fit = BgNbdFit(
            params.r, params.alpha, params.a, params.b, params.log_likelihood, params.converged,
            params.n_customers, time_unit,
        )  # fmt: skip
        with np.errstate(all="ignore"):
            alive = [float(v) if np.isfinite(v) else None for v in p_alive(params, xs, t_xs, ts)]
            forecast = expected_purchases(params, horizon / unit, xs, t_xs, ts)
            expected = [float(v) if np.isfinite(v) else None for v in forecast]
    rows = []
    for i, cid in enumerate(ids):
        history, c, f = histories[cid], customers[cid], facts.get(cid)
        rows.append(
            CustomerChurn(
                cid, c.external_ref, c.owner, rule_status(history, f, as_of, rule),
                bool(f and f.explicit_churned), is_won_back(history, f, as_of, rule),
                _text(return_day(history, f, rule)), (as_of - history.days[-1]).days, churn_threshold_days(history.days, rule),
                int(xs[i]), float(t_xs[i]), float(ts[i]),
                None if alive[i] is None else round(alive[i], 6),
                None if expected[i] is None else round(expected[i], 6),
            )
        )  # fmt: skip
    for cid, c in customers.items():  # churned or won back explicitly without a purchase
        f = facts.get(cid)
        if f and cid not in histories:
            rows.append(
                CustomerChurn(
                    cid, c.external_ref, c.owner, rule_status(None, f, as_of, rule),
                    f.explicit_churned,
                    is_won_back(None, f, as_of, rule), _text(return_day(None, f, rule)),
                    None, None, 0, None, None, None, None,
                )
            )  # fmt: skip
    rows.sort(key=lambda r: r.customer_id)
    return ChurnReport(
        as_of=query.as_of_iso, known_at=query.known_at_iso, rule=rule, horizon_days=horizon,
        bgnbd=fit,
        status_counts={s: sum(1 for r in rows if r.status == s) for s in ("active", "at_risk",
                                                                           "churned")},
        won_back=sum(1 for r in rows if r.won_back), customers=rows,
    )  # fmt: skip


def random_population(seed: int, customers: int) -> list[cmd.Command]:
    """Registrations, purchases (same-day repeats, two currencies, tiny and huge amounts),
    refunds, churn and win-back, owners; every business time within 2024–2025."""
    rng = random.Random(seed)
    timeline: list[tuple[datetime, int, cmd.Command]] = []
    for c in range(customers):
        ref = f"R-{c:04d}"
        registered = START + timedelta(days=rng.randint(0, 500), hours=rng.randint(0, 12))
        timeline.append(
            (registered, 0, cmd.RegisterCustomer(external_ref=ref, occurred_at=registered))
        )
        if rng.random() < 0.5:
            owner = f"owner-{rng.randint(1, 3)}"
            timeline.append((registered, 1, cmd.AssignOwner(customer=ref, owner=owner)))
        moment = registered
        for k in range(rng.choice([0, 0, 1, 1, 2, 3, 5, 8, 20])):
            moment += timedelta(hours=rng.choice([1, 2, 30, 24 * rng.randint(1, 200)]))
            if moment > END:
                break
            amount = Decimal(rng.choice([1, 5, 99, 1234, 50_000, 2_000_000])).scaleb(-2)
            currency = "USD" if rng.random() < 0.15 else "CNY"
            order = f"O-{k}"
            timeline.append(
                (moment, 2, cmd.RecordPurchase(customer=ref, order_id=order, amount=amount,
                                              currency=currency, occurred_at=moment))
            )  # fmt: skip
            if rng.random() < 0.1:
                later = min(moment + timedelta(days=rng.randint(0, 40)), END)
                part = max((amount / 2).quantize(Decimal("0.01")), Decimal("0.01"))
                timeline.append(
                    (later, 3, cmd.RefundPurchase(customer=ref, order_id=order, amount=part,
                                                 occurred_at=later))
                )  # fmt: skip
        if rng.random() < 0.15:
            churned = min(moment + timedelta(days=rng.randint(1, 300)), END)
            timeline.append(
                (churned, 4, cmd.ChurnCustomer(customer=ref, churn_reason="test",
                                              occurred_at=churned))
            )  # fmt: skip
            if rng.random() < 0.5:
                back = min(churned + timedelta(days=rng.randint(1, 100)), END)
                timeline.append((back, 5, cmd.WinBackCustomer(customer=ref, occurred_at=back)))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [command for _, _, command in timeline]


def reports_of(crm: CRM, queries: list[ReportQuery]) -> list[tuple[bytes, bytes]]:
    engine = ProjectionEngine(crm, read_models())
    out = []
    try:
        engine.catch_up_all()
        with engine.db.reading() as tx:
            tables = engine.all_active_tables(tx)
            for q in queries:
                for fast, slow in (
                    (segments_report, reference_segments),
                    (lambda *a: segments_report(*a, currency="USD"),
                     lambda *a: reference_segments(*a, currency="USD")),
                    (churn_report, reference_churn),
                    (lambda *a: churn_report(*a, time_unit="day"),
                     lambda *a: reference_churn(*a, time_unit="day")),
                ):  # fmt: skip
                    expected = msgspec.json.encode(slow(tx, tables, q))
                    out.append((msgspec.json.encode(fast(tx, tables, q)), expected))
    finally:
        engine.close()
    return out


def test_reports_equal_the_per_customer_reference_on_a_random_population(store_url: str) -> None:
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    with CRM(store_url, clock=lambda: recorded) as crm:
        outcomes = list(crm.execute_many(random_population(seed=20240630, customers=300)))
        assert not [o for o in outcomes if isinstance(o, Exception)]
        queries = [
            ReportQuery.at(as_of, "2026-06-01")
            for as_of in ("2023-06-01", "2024-01-02", "2024-03-31", "2024-09-30", "2025-06-30")
        ]
        queries.append(ReportQuery.at("2027-01-01", "2025-12-31"))  # nothing recorded yet
        results = reports_of(crm, queries)
    assert len(results) == 4 * len(queries)
    for fast, expected in results:
        assert fast == expected
    # The population exercises what the optimisation must get right.
    segments = msgspec.json.decode(results[4 * 4][0])
    lifecycles = {c["lifecycle"] for c in segments["customers"]}
    assert lifecycles >= {"prospect", "new", "repeat", "churned", "won_back"}
    assert any(c["monetary"].startswith("-") or c["monetary"] == "0.00"
               for c in segments["customers"] if c["frequency"])  # fmt: skip


def test_ids_of_several_widths_take_the_listed_path(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crm_es.reports.facts.purchase_scan as scan

    monkeypatch.setattr(scan, "match_fixed_width", lambda *args: None)
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    with CRM(store_url, clock=lambda: recorded) as crm:
        list(crm.execute_many(random_population(seed=7, customers=60)))
        results = reports_of(crm, [ReportQuery.at("2025-03-31", "2026-06-01")])
    assert all(fast == expected for fast, expected in results)


def test_reports_on_an_empty_store(store_url: str) -> None:
    with CRM(store_url) as crm:
        [(seg, seg_ref), *_, (churn, churn_ref)] = reports_of(crm, [ReportQuery.at("2025-01-01")])
    assert seg == seg_ref and churn == churn_ref


def test_day_numbers_match_dates() -> None:
    from crm_es.domain.times import day_number

    assert day_number(date(1970, 1, 1)) == 0 and day_number(date(2024, 3, 1)) == 19783
