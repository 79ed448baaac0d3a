"""The value report on real stores: hand-checked spend per repeat purchase day, the CLV built
from the report's own fits, deciles that add up, other currencies left out and counted, and a
report for (as_of, known_at) that later and back-dated purchases never move."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from crm_es import CRM
from crm_es.analytics.bgnbd import BgNbdParams, expected_purchases
from crm_es.analytics.gamma_gamma import GammaGammaParams, conditional_expected_spend, expected_clv
from crm_es.domain.errors import CrmError
from crm_es.reports.api import Reports
from crm_es.reports.html.value_section import render_value
from crm_es.reports.value import CustomerValue, ValueReport
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store
from tests.helpers.value_population import add_simulated_buyers, at

BUILT = datetime(2026, 7, 1, tzinfo=UTC)  # when the scenario is recorded
AS_OF, KNOWN_AT = "2026-06-30", "2026-07-01T00:00:00Z"
REPEAT_BUYERS = 12
BACKGROUND = 40


def buy(crm: CRM, ref: str, order: str, amount: str, day: str, currency: str = "CNY") -> None:
    crm.record_purchase(
        customer=ref, order_id=order, amount=amount, currency=currency, occurred_at=at(day)
    )


def repeat_days(i: int) -> list[str]:
    """B-i: a first day, then 1 + i % 4 repeat days 9 + i days apart."""
    start = date(2026, 1, 1) + timedelta(days=3 * i)
    return [(start + timedelta(days=(9 + i) * k)).isoformat() for k in range(2 + i % 4)]


def repeat_amount(i: int, k: int) -> int:
    return 20 * (i + 1) + 7 * k  # k-th repeat day (1, 2, …)


def mean_by_hand(i: int) -> Decimal:
    days = len(repeat_days(i)) - 1
    return Decimal(sum(repeat_amount(i, k) for k in range(1, days + 1))) / days


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """As of 2026-06-30: 40 simulated buyers, twelve repeat buyers with hand-made spend (the
    first day of each worth 999, never in m̄), and one customer of each special kind."""
    with module_store(request, tmp_path_factory) as url:
        with CRM(url, clock=Clock(BUILT)) as crm:
            owners = ("staff:li", "staff:wang", "staff:zhao")
            add_simulated_buyers(crm, BACKGROUND, seed=19, until=AS_OF, owners=owners)
            for i in range(REPEAT_BUYERS):
                ref = f"B-{i}"
                owner = "staff:li" if i % 2 else "staff:wang"
                crm.register_customer(external_ref=ref, owner=owner, occurred_at=at("2025-12-01"))
                for k, day in enumerate(repeat_days(i)):
                    buy(crm, ref, f"O-{k}", str(repeat_amount(i, k) if k else 999), day)
            crm.register_customer(external_ref="REFUNDED", occurred_at=at("2025-12-01"))
            buy(crm, "REFUNDED", "O-1", "300", "2026-02-01")
            buy(crm, "REFUNDED", "O-2", "100", "2026-03-01")
            buy(crm, "REFUNDED", "O-3", "60", "2026-03-01")  # same day: one purchase day of 160
            buy(crm, "REFUNDED", "O-4", "200", "2026-04-01")
            crm.refund_purchase(
                customer="REFUNDED", order_id="O-1", amount="100", occurred_at=at("2026-02-05")
            )  # the first day's: not in m̄
            crm.refund_purchase(
                customer="REFUNDED", order_id="O-4", amount="50", occurred_at=at("2026-05-10")
            )  # a repeat day's, later: counts
            crm.register_customer(external_ref="ONCE", occurred_at=at("2025-12-01"))
            buy(crm, "ONCE", "O-1", "80", "2026-05-01")
            crm.register_customer(external_ref="MIXED", occurred_at=at("2025-12-01"))
            buy(crm, "MIXED", "O-1", "100", "2026-02-01")
            buy(crm, "MIXED", "O-2", "30.00", "2026-03-01", currency="USD")
            buy(crm, "MIXED", "O-3", "100", "2026-04-01")
            crm.register_customer(external_ref="FREE", occurred_at=at("2025-12-01"))
            buy(crm, "FREE", "O-1", "100", "2026-02-01")
            buy(crm, "FREE", "O-2", "0", "2026-03-01")
            buy(crm, "FREE", "O-3", "0", "2026-04-01")
            crm.register_customer(external_ref="GONE", occurred_at=at("2025-12-01"))
            buy(crm, "GONE", "O-1", "500", "2026-01-10")
            buy(crm, "GONE", "O-2", "400", "2026-02-10")
            crm.churn_customer(customer="GONE", churn_reason="moved away",
                               occurred_at=at("2026-03-01"))  # fmt: skip
            crm.register_customer(external_ref="PROSPECT", occurred_at=at("2025-12-01"))
        yield url


def value_of(url: str, clock: Clock | None = None, **kw: object) -> ValueReport:
    with CRM(url, clock=clock or Clock(BUILT)) as crm, Reports(crm) as reports:
        report: ValueReport = reports.value(**{"as_of": AS_OF, "known_at": KNOWN_AT, **kw})
    return report


def by_ref(report: ValueReport) -> dict[str | None, CustomerValue]:
    return {c.external_ref: c for c in report.customers}


def test_mean_spend_is_the_repeat_days_net_of_their_refunds(shop: str) -> None:
    report = value_of(shop)
    rows = by_ref(report)
    assert "PROSPECT" not in rows  # no purchase: nothing to value
    for i in range(REPEAT_BUYERS):
        row = rows[f"B-{i}"]
        assert row.x == len(repeat_days(i)) - 1
        assert Decimal(row.mean_spend or "") == mean_by_hand(i).quantize(Decimal("0.01"))
    # (160 + (200 − 50)) / 2: the first day (300, refunded 100) stays out.
    assert rows["REFUNDED"].x == 2 and rows["REFUNDED"].mean_spend == "155.00"
    assert rows["ONCE"].x == 0 and rows["ONCE"].mean_spend is None
    assert rows["FREE"].mean_spend == "0.00"
    assert report.currency == "CNY" and report.buyers == BACKGROUND + REPEAT_BUYERS + 5
    assert report.zero_repeat_spend == 1  # FREE: left out of the fit, which needs m̄ > 0


def test_another_currency_is_left_out_and_counted(shop: str) -> None:
    report = value_of(shop)
    mixed = by_ref(report)["MIXED"]
    assert mixed.other_currency and mixed.x == 2
    assert mixed.mean_spend is mixed.expected_spend is mixed.clv is mixed.decile is None
    assert mixed.expected_purchases is not None  # buying in USD is still buying
    assert report.other_currency == 1
    repeat_in_cny = sum(c.x > 0 and not c.other_currency for c in report.customers)
    assert report.gamma_gamma is not None
    assert report.gamma_gamma.customers == repeat_in_cny - 1  # all but FREE
    assert report.spend_check.customers == repeat_in_cny - 1


def test_both_fits_converge_and_the_spend_check_is_reported(shop: str) -> None:
    report = value_of(shop)
    assert report.bgnbd is not None and report.bgnbd.converged
    assert report.gamma_gamma is not None and report.gamma_gamma.converged
    assert report.spend_check.pearson_r is not None and -1 <= report.spend_check.pearson_r <= 1


def test_clv_is_the_fitted_models_formula(shop: str) -> None:
    report = value_of(shop, horizon_days=120, discount_rate=0.08)
    with CRM(shop, clock=Clock(BUILT)) as crm, Reports(crm) as reports:
        churn = reports.churn(AS_OF, KNOWN_AT)
    assert report.bgnbd == churn.bgnbd  # one fit, one answer, in both reports
    assert report.bgnbd is not None and report.gamma_gamma is not None
    bg = BgNbdParams(report.bgnbd.r, report.bgnbd.alpha, report.bgnbd.a, report.bgnbd.b,
                     log_likelihood=0.0, converged=True, n_customers=0)  # fmt: skip
    fit = report.gamma_gamma
    gg = GammaGammaParams(fit.p, fit.q, fit.gamma, 0.0, fit.converged, fit.customers)
    histories = {c.external_ref: c for c in churn.customers}
    for ref in ("B-0", "B-5", "REFUNDED", "ONCE", "FREE", "S-0", "S-1"):
        row, h = by_ref(report)[ref], histories[ref]
        assert h.t_x is not None and h.T is not None
        mean = float(Decimal(row.mean_spend or "0"))
        spend = conditional_expected_spend(gg, row.x, mean)[0]
        expected = expected_purchases(bg, 120 / 7, row.x, h.t_x, h.T)[0]
        clv = expected_clv(bg, [spend], row.x, h.t_x, h.T, 120, 7.0, 0.08)[0]
        assert row.expected_purchases == pytest.approx(expected, abs=1e-6)
        assert Decimal(row.expected_spend or "") == round(Decimal(spend), 2), ref
        assert Decimal(row.clv or "") == round(Decimal(clv), 2), ref
    assert by_ref(report)["ONCE"].expected_spend == fit.mean_spend  # no repeat day: everyone's


def test_an_explicit_churn_overrides_the_model(shop: str) -> None:
    gone = by_ref(value_of(shop))["GONE"]
    assert gone.status == "churned" and gone.explicit
    assert gone.expected_purchases == 0.0 and gone.clv == "0.00"
    assert gone.mean_spend == "400.00" and gone.expected_spend is not None


def test_deciles_add_up_to_the_total(shop: str) -> None:
    report = value_of(shop)
    valued = [c for c in report.customers if c.clv is not None]
    assert len(report.deciles) == 10 and len(valued) == report.buyers - 1  # all but MIXED
    assert sum(Decimal(d.clv_total) for d in report.deciles) == Decimal(report.total_clv or "")
    assert sum(Decimal(c.clv or "") for c in valued) == Decimal(report.total_clv or "")
    assert sum(d.share or 0.0 for d in report.deciles) == pytest.approx(1.0, abs=1e-5)
    # 56 buyers with a CLV: the first six deciles take 6, the last four 5.
    assert len(valued) == 56 and [d.customers for d in report.deciles] == [6] * 6 + [5] * 4
    ranked = sorted(valued, key=lambda c: (-Decimal(c.clv or ""), c.customer_id))
    sizes = [d.customers for d in report.deciles]
    assert [c.decile for c in ranked] == [d for d, size in enumerate(sizes, 1) for _ in range(size)]
    for d in report.deciles:
        members = [Decimal(c.clv or "") for c in ranked if c.decile == d.decile]
        assert (Decimal(d.clv_min or ""), Decimal(d.clv_max or "")) == (min(members), max(members))
        exact = float(sum(members) / Decimal(report.total_clv or ""))
        assert d.share == pytest.approx(exact, abs=5e-7)  # rounded to 6 decimals


def test_a_report_for_as_of_and_known_at_never_moves(shop: str) -> None:
    before = msgspec.json.encode(value_of(shop))
    later = Clock(BUILT + timedelta(days=30))
    with CRM(shop, clock=later) as crm:
        buy(crm, "B-3", "LATE-1", "777", "2026-06-15")  # back-dated: recorded after known_at
        buy(crm, "B-4", "LATE-1", "50", "2026-07-20")  # after as_of
        crm.register_customer(external_ref="NEWCOMER", occurred_at=at("2025-11-01"))
        buy(crm, "NEWCOMER", "O-1", "40", "2026-02-01")
        buy(crm, "NEWCOMER", "O-2", "60", "2026-03-01")
    assert msgspec.json.encode(value_of(shop, later)) == before
    # The same question with today's knowledge does see them (so the check above can fail).
    known_now = by_ref(value_of(shop, later, known_at=None))
    assert known_now["B-3"].x == by_ref(msgspec.json.decode(before, type=ValueReport))["B-3"].x + 1
    assert "NEWCOMER" in known_now


def test_a_past_as_of_ignores_later_purchases(shop: str) -> None:
    rows = by_ref(value_of(shop, as_of="2026-02-15"))
    assert "ONCE" not in rows  # first bought in May
    assert rows["REFUNDED"].x == 0  # only the first day by then
    assert rows["MIXED"].other_currency is False  # the USD purchase came on 1 March


def test_too_few_buyers_give_no_fit_and_no_clv(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1", occurred_at=at("2026-01-01"))
    buy(crm, "C-1", "O-1", "10", "2026-01-05")
    buy(crm, "C-1", "O-2", "20", "2026-02-05")
    with Reports(crm) as reports:
        report = reports.value(as_of=AS_OF)
    assert report.bgnbd is None and report.gamma_gamma is None
    assert report.deciles == () and report.total_clv is None
    assert [(c.mean_spend, c.clv) for c in report.customers] == [("20.00", None)]


@pytest.mark.parametrize(
    ("option", "value"), [("horizon_days", 0), ("horizon_days", 4000), ("discount_rate", -0.1),
                          ("discount_rate", float("nan"))],
)  # fmt: skip
def test_a_horizon_or_rate_out_of_range_is_refused(crm: CRM, option: str, value: float) -> None:
    with Reports(crm) as reports, pytest.raises(CrmError, match=option):
        reports.value(as_of=AS_OF, **{option: value})  # type: ignore[arg-type]


def test_longer_horizons_expect_more_and_discounting_values_less(shop: str) -> None:
    short, long = value_of(shop, horizon_days=30), value_of(shop, horizon_days=365)
    flat = value_of(shop, horizon_days=365, discount_rate=0.0)
    for a, b, c in zip(short.customers, long.customers, flat.customers, strict=True):
        if a.expected_purchases and not a.explicit:
            assert b.expected_purchases is not None and b.expected_purchases > a.expected_purchases
        if b.clv is not None and Decimal(b.clv) > 0:
            assert Decimal(b.clv) < Decimal(c.clv or "")


def test_the_html_section_shows_the_deciles_and_the_top_customers_with_their_owner(
    shop: str,
) -> None:
    report = value_of(shop)
    part = render_value(report, AS_OF, 10)
    assert part.startswith('<section id="value">\n<h2>10. Customer lifetime value</h2>')
    assert 'data-chart="chart-value-deciles" data-points="10"' in part
    deciles = part[part.index("<caption>CLV deciles") : part.index("</table>")]
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td class="num">(\d+)</td>', deciles)
    assert rows == [(str(d.decile), str(d.customers)) for d in report.deciles]
    ranked = sorted(
        (c for c in report.customers if c.clv is not None),
        key=lambda c: (-Decimal(c.clv or ""), c.customer_id),
    )
    top = part[part.index("<caption>Top 15 customers by CLV") :]
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", top)
    assert cells == [(c.external_ref, c.owner or "(unassigned)") for c in ranked[:15]]
    assert any(owner.startswith("staff:") for _, owner in cells)


def test_the_html_section_says_so_without_buyers(crm: CRM) -> None:
    with Reports(crm) as reports:
        report = reports.value(as_of=AS_OF)
    part = render_value(report, AS_OF, 10)
    assert "No purchases yet as of 2026-06-30: no customer value to show." in part
    assert "<figure" not in part
