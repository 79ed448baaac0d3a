"""What a person reading ``crm-es report value`` as a table sees below the customers: the two
fits, the spend-frequency check, who was left out, and the CLV deciles.

JSON and CSV carry these as the report's own fields (CSV: the customer rows only, as for every
report); a table would otherwise show the rows alone, and the deciles are the point of the
report. Every line fits the 120 columns of a table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_es.cli.render import format_table

if TYPE_CHECKING:  # the report module loads numpy and scipy: only when a report runs
    from crm_es.reports.value import ValueReport


def _converged(flag: bool) -> str:
    return "converged" if flag else "NOT converged: do not trust the figures"


def value_summary(report: ValueReport) -> str:
    """The fits, the check, the exclusions and the deciles, as text lines and a table."""
    lines = [""]
    bg, gg, check = report.bgnbd, report.gamma_gamma, report.spend_check
    if bg is None:
        lines.append("BG/NBD: too few buyers to fit")
    else:
        lines.append(
            f"BG/NBD ({bg.time_unit}): r {bg.r:.4g}, alpha {bg.alpha:.4g}, a {bg.a:.4g}, "
            f"b {bg.b:.4g}; {bg.customers:,} buyers; {_converged(bg.converged)}"
        )
    if gg is None:
        lines.append(f"Gamma-Gamma: too few repeat buyers paying in {report.currency} to fit")
    else:
        lines.append(
            f"Gamma-Gamma ({report.currency}): p {gg.p:.4g}, q {gg.q:.4g}, gamma {gg.gamma:.4g}; "
            f"{gg.customers:,} repeat buyers; {_converged(gg.converged)}"
        )
        mean = f"{gg.mean_spend} {report.currency}" if gg.mean_spend else "infinite (q <= 1)"
        lines.append(f"Mean value of a purchase day: {mean}")
    if check.pearson_r is not None:
        lines.append(
            f"Spend vs frequency: Pearson r {check.pearson_r:.3f} over {check.customers:,} "
            "repeat buyers (the Gamma-Gamma model assumes none)"
        )
    lines.append(f"Buyers paying in another currency (no CLV): {report.other_currency:,}")
    lines.append(f"Repeat buyers whose repeat days were worth 0 (not fitted): "
                 f"{report.zero_repeat_spend:,}")  # fmt: skip
    lines.append(
        f"CLV over {report.horizon_days} days at {report.discount_rate:.1%} a year: total "
        f"{report.total_clv or '-'} {report.currency}"
    )
    text = "\n".join(lines) + "\n"
    if report.deciles:
        rows = [
            {"decile": d.decile, "customers": d.customers, "clv_total": d.clv_total,
             "share_%": None if d.share is None else round(100 * d.share, 1),
             "clv_min": d.clv_min, "clv_max": d.clv_max}
            for d in report.deciles
        ]  # fmt: skip
        text += "\n" + format_table(rows)
    return text
