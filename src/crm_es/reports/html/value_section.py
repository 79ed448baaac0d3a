"""The value section of the HTML page: CLV deciles (chart and table), the customers worth most
with their owner, and the two models behind the figures with the spend-frequency check.

The chart has one bar per CLV decile (1 = the tenth of buyers with the highest CLV) with its
share of the total, and the cumulative share as a line on the same 0–100 % axis: where the line
reaches 80 % is how few customers hold most of the value the team can still win or lose.

The figures are the ``value`` report's (:mod:`crm_es.reports.value`) for the page's one
(as_of, known_at) query, with its default horizon and discount rate. Customers are shown by
external ref and owner only: the value report holds no personal data, and this list needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from crm_es.reports.facts.buyer_model import MIN_CUSTOMERS_TO_FIT
from crm_es.reports.html.blocks import Num, figure, section, table
from crm_es.reports.html.charts import BAR_COLOUR, WIDE, chart_style, to_svg
from crm_es.reports.html.data import PageData
from crm_es.reports.html.people import money, no_data
from crm_es.reports.value import MIN_REPEAT_BUYERS_TO_FIT, CustomerValue, ValueReport

TOP_CUSTOMERS: Final = 15
LINE_COLOUR: Final = "#c62828"


def clv_deciles(chart_id: str, shares: Sequence[float], currency: str) -> str:
    """Bars: each decile's share of the total CLV (in %, deciles 1..n); line: the cumulative
    share."""
    title = f"Customer lifetime value ({currency}): share of the total by CLV decile"
    percent = [100.0 * s for s in shares]
    deciles = list(range(1, len(percent) + 1))
    with chart_style(chart_id):
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        ax.bar(deciles, percent, color=BAR_COLOUR, label="share of the total")
        for x, v in zip(deciles, percent, strict=True):
            ax.annotate(f"{v:.1f}%", (x, v), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=8)  # fmt: skip
        cumulative = np.cumsum(percent).tolist()
        ax.plot(deciles, cumulative, color=LINE_COLOUR, marker="o", markersize=3,
                label="cumulative share")  # fmt: skip
        ax.set_xticks(deciles)
        ax.set_xlabel("CLV decile (1 = the 10% of buyers with the highest CLV)")
        ax.set_ylabel("Share of the total CLV")
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_ylim(0, 108)
        ax.set_title(title)
        ax.legend(loc="center right", fontsize=8)
        return to_svg(fig, chart_id, title)


def _money(amount: str | None) -> Decimal | None:
    return None if amount is None else Decimal(amount)


def _top(report: ValueReport) -> list[CustomerValue]:
    """The customers with the highest CLV, ties by customer id (the report's order)."""
    valued = [c for c in report.customers if c.clv is not None]
    return sorted(valued, key=lambda c: -Decimal(c.clv or "0"))[:TOP_CUSTOMERS]


def _models(report: ValueReport) -> list[tuple[str, object]]:
    gg, check = report.gamma_gamma, report.spend_check
    rows: list[tuple[str, object]] = []
    if gg is not None:
        rows += [
            ("Gamma-Gamma p", Num(f"{gg.p:.4g}")), ("q", Num(f"{gg.q:.4g}")),
            (f"γ ({report.currency})", Num(f"{gg.gamma:.4g}")),
            (f"mean value of a purchase day ({report.currency})", _money(gg.mean_spend)),
            ("repeat buyers fitted", gg.customers),
            ("converged", "yes" if gg.converged else "no"),
        ]  # fmt: skip
    if check.pearson_r is not None:
        rows.append(("spend–frequency correlation (Pearson r)", Num(f"{check.pearson_r:.3f}")))
    rows += [
        ("buyers paying in another currency (no CLV)", report.other_currency),
        ("repeat buyers whose repeat days were worth 0", report.zero_repeat_spend),
    ]
    return rows


def value_section(d: PageData, n: int) -> str:
    """The section of the page's query, numbered ``n``."""
    return render_value(d.value, d.day, n)


def render_value(report: ValueReport, day: str, n: int) -> str:
    """CLV deciles, top customers by CLV with owner, the models, for the report of ``day``."""
    title = f"{n}. Customer lifetime value"
    note = (
        f"Expected value of each buyer's purchases in the next {report.horizon_days} days, "
        f"discounted at {report.discount_rate:.0%} a year, in {report.currency}: BG/NBD "
        "expected purchase days × Gamma-Gamma expected value of a day (the customer's own mean, "
        "shrunk towards everyone's the fewer repeat days there are). Customers churned "
        "explicitly count 0; buyers paying in another currency are left out and counted. The "
        "Gamma-Gamma model assumes spend does not depend on frequency: the correlation below "
        "should be near 0."
    )
    if not report.customers:
        return section(
            "value", title, note,
            no_data(f"No purchases yet as of {day}: no customer value to show."),
        )  # fmt: skip
    if not report.deciles:
        return section(
            "value", title, note,
            no_data(f"Too few buyers as of {day} to value them: the models need "
                    f"{MIN_CUSTOMERS_TO_FIT} buyers and {MIN_REPEAT_BUYERS_TO_FIT} repeat "
                    f"buyers paying in {report.currency}."),
            table("Models", ["Figure", "Value"], _models(report)),
        )  # fmt: skip
    return section(
        "value", title, note,
        figure("chart-value-deciles",
               clv_deciles("chart-value-deciles", [x.share or 0.0 for x in report.deciles],
                           report.currency),
               "CLV share by decile", len(report.deciles)),
        '<div class="row">',
        table(f"CLV deciles (total {money(report.total_clv or '0')} {report.currency})",
              ["Decile", "Customers", "CLV total", "Share %", "Lowest CLV", "Highest CLV"],
              [(x.decile, x.customers, _money(x.clv_total),
                None if x.share is None else 100.0 * x.share, _money(x.clv_min),
                _money(x.clv_max)) for x in report.deciles]),
        table("Models", ["Figure", "Value"], _models(report)),
        "</div>",
        table(f"Top {TOP_CUSTOMERS} customers by CLV",
              ["Customer", "Owner", f"CLV ({report.currency})", "Expected purchases",
               "Expected value of a day", "Repeat days", "Status"],
              [(c.external_ref or c.customer_id, c.owner or "(unassigned)", _money(c.clv),
                c.expected_purchases, _money(c.expected_spend), c.x,
                c.status.replace("_", " ")) for c in _top(report)],
              css_class="list"),
    )  # fmt: skip
