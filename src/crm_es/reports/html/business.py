"""The sections that open the page: how the business is going and who needs a call.

1. Revenue, orders and new customers by month, with the change against the previous period
   (:mod:`crm_es.reports.monthly`): a chart of the last two years and a table of the last
   twelve months, newest first, revenue per currency (never summed across currencies).
2. The at-risk customers worth most and 3. the most overdue care tasks
   (:mod:`crm_es.reports.watchlist`): name, ref, owner and what to act on.
Each says "no data yet" in words when there is nothing to show.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from crm_es.reports.html.blocks import Num, figure, section, table
from crm_es.reports.html.data import PageData
from crm_es.reports.html.monthly_chart import MAX_MONTHS, monthly_chart
from crm_es.reports.html.people import change, day_span, days_ago, html_text, money, no_data
from crm_es.reports.monthly import MonthFigures

TABLE_MONTHS: Final = 12


def month_label(m: MonthFigures) -> str:
    """``2026-11``, or ``2026-12 (to 12-08)`` for the report date's unfinished month."""
    return f"{m.month} (to {m.last_day[5:]})" if m.partial else m.month


def compared_with(m: MonthFigures) -> str:
    """What a month's change is against, in words."""
    if m.previous_first_day is None or m.previous_last_day is None:
        return "nothing before it"
    return day_span(m.previous_first_day, m.previous_last_day)


def _delta(now: Decimal | int, before: Decimal | int | None) -> str:
    text, css = change(now, before)
    return f'<span class="delta {css}">{html_text(text)}</span>'


def _monthly_table(d: PageData) -> str:
    """Newest month first; a change cell is HTML (its arrow coloured), so rows are built here."""
    monthly = d.monthly
    header = ["Month", "Orders", "Change", "New customers", "Change"]
    for currency in monthly.currencies:
        header += [f"Revenue ({currency})", "Change"]
    rows = []
    for m in reversed(monthly.months[-TABLE_MONTHS:]):
        cells = [
            f"<td>{html_text(month_label(m))}</td>",
            f'<td class="num">{m.orders:,}</td>',
            f'<td class="num">{_delta(m.orders, m.previous_orders)}</td>',
            f'<td class="num">{m.new_customers:,}</td>',
            f'<td class="num">{_delta(m.new_customers, m.previous_new_customers)}</td>',
        ]
        for currency in monthly.currencies:
            now = Decimal(m.revenue[currency])
            before = m.previous_revenue
            cells += [
                f'<td class="num">{html_text(money(now))}</td>',
                f'<td class="num">'
                f"{_delta(now, Decimal(before[currency]) if before else None)}</td>",
            ]
        rows.append(f"<tr>{''.join(cells)}</tr>\n")
    head = "".join(f"<th>{html_text(h)}</th>" for h in header)
    caption = f"Last {min(TABLE_MONTHS, len(monthly.months))} months, newest first"
    return (
        f'<table class="monthly"><caption>{html_text(caption)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(rows)}</tbody></table>"
    )


def monthly_section(d: PageData, n: int) -> str:
    months = d.monthly.months
    title = f"{n}. Revenue, orders and new customers by month"
    note = (
        "Calendar months in the store's time zone. Revenue is net of refunds (a refund counts "
        "in the month it was made), per currency: amounts in different currencies are never "
        "added up. New customers: customers whose first event fell in the month. Change: "
        "against the month before"
    )
    if not months:
        return section(
            "monthly", title, note + ".", no_data(f"No orders or customers yet as of {d.day}.")
        )
    last = months[-1]
    if last.partial:
        note += (
            f"; {last.month} is counted to the report date ({last.last_day}) and compared with "
            f"the same days of the month before ({compared_with(last)})"
        )
    shown = months[-MAX_MONTHS:]
    revenue = {c: [float(Decimal(m.revenue[c])) for m in shown] for c in d.monthly.currencies}
    points = sum(1 for m in shown if m.orders or m.new_customers) + sum(
        1 for values in revenue.values() for v in values if v
    )
    chart = monthly_chart(
        "chart-monthly",
        [m.month for m in shown],
        last.partial,
        revenue,
        [m.orders for m in shown],
        [m.new_customers for m in shown],
    )
    return section(
        "monthly",
        title,
        note + ".",
        figure("chart-monthly", chart, "Revenue, orders and new customers by month", points),
        _monthly_table(d),
    )


def at_risk_section(d: PageData, n: int) -> str:
    w = d.watch
    title = f"{n}. At-risk customers worth most"
    note = (
        f"At risk by the churn rule as of {d.day}: silent for more than "
        f"{d.churn.rule.at_risk_share:.0%} of the days after which they count as churned. "
        f"Ranked by net spend in {w.currency} (purchases in other currencies are not "
        "converted). Call them before they churn."
    )
    if not w.at_risk:
        return section("at-risk", title, note, no_data(f"No customer is at risk as of {d.day}."))
    today = d.query.reference_date
    shown = f"Top {len(w.at_risk)} of {w.at_risk_total:,} at-risk customers"
    return section(
        "at-risk",
        title,
        note,
        table(
            shown,
            ["Customer", "Ref", "Owner", f"Net spend ({w.currency})", "Segment", "Tier",
             "Purchase days", "Silent (days / churn at)", "Last contact", "P(alive)"],
            [(c.name or "–", c.external_ref or "–", c.owner or "(unassigned)",
              Num(money(c.net_spend)), c.segment or "–", c.tier, c.purchase_days,
              Num(f"{c.days_since_last_purchase or 0:,} / {c.threshold_days or 0:,.0f}"),
              days_ago(c.last_contact_on, today),
              None if c.p_alive is None else Num(f"{c.p_alive:.2f}"))
             for c in w.at_risk],
            lang="zh-CN", css_class="list",
        ),
    )  # fmt: skip


def overdue_section(d: PageData, n: int) -> str:
    w = d.watch
    title = f"{n}. Overdue care tasks"
    note = (
        f"Care tasks still scheduled whose due day was before {d.day}, most overdue first; "
        "owner: the customer's owner, assigned to: the staff the task was given to."
    )
    if not w.overdue:
        return section(
            "overdue-tasks", title, note, no_data(f"No overdue care tasks as of {d.day}.")
        )
    shown = f"{len(w.overdue)} most overdue of {w.overdue_total:,} overdue care tasks"
    return section(
        "overdue-tasks",
        title,
        note,
        table(
            shown,
            ["Customer", "Ref", "Owner", "Care kind", "Due", "Days overdue", "Assigned to",
             "Task"],
            [(t.name or "–", t.external_ref or "–", t.owner,
              (t.care_kind or "–").replace("_", " "), t.due_on, t.days_overdue,
              t.staff or "–", t.task_id)
             for t in w.overdue],
            lang="zh-CN", css_class="list",
        ),
    )  # fmt: skip


BUSINESS_SECTIONS: Final = (monthly_section, at_risk_section, overdue_section)


def render_business(d: PageData) -> list[str]:
    """The opening sections, numbered from 1."""
    return [render(d, i + 1) for i, render in enumerate(BUSINESS_SECTIONS)]
