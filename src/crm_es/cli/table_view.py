"""What a report shows on the command line: the rows selected by ``--owner`` / ``--segment``,
in the order of ``--sort``, cut at ``--limit``, and for a table the columns that fit a terminal.

Selection works on the report itself, so JSON and CSV carry the same rows as the table: every
list of the report is filtered (by the fields its items have), sorted and cut. Totals and
fitted models stay those of the whole population: a selection chooses what is listed, not what
is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from crm_es.domain.errors import CrmError

# The fields ``--segment`` matches: a segment by either map, a lifecycle stage, a tier, a churn
# status or an RFM code, whichever the report's rows have.
SEGMENT_FIELDS: Final = ("segment", "segment_cn", "lifecycle", "tier", "status", "rfm")

# A table is for reading: this many rows unless --limit says otherwise (0: all).
TABLE_LIMIT: Final = 50
# Reports whose rows are bounded by an option of their own (the funnel: six stages and four per
# month of --months): a table shows every row asked for, or the report's last month is cut.
UNCUT_TABLES: Final = frozenset({"funnel"})
TABLE_WIDTH: Final = 120
TABLE_CELL: Final = 24  # terminal columns of one cell: a long company name is cut, not the table

# The columns a table shows first, most useful first: the last ones go when the terminal is
# too narrow. Every column is in JSON and CSV, and --columns all shows them.
TABLE_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "segments": ("external_ref", "name", "owner", "lifecycle", "segment", "tier", "rfm",
                 "monetary", "frequency", "recency_days", "region", "segment_cn"),
    "churn": ("external_ref", "name", "owner", "status", "p_alive", "expected_purchases",
              "days_since_last_purchase", "won_back_on", "threshold_days", "explicit"),
    "satisfaction": ("dimension", "key", "responses", "csat", "nps", "ces_mean", "filed",
                     "open", "sla_breach_rate", "resolution_hours_median", "reopen_rate",
                     "gap_mean"),
    "agenda": ("section", "external_ref", "name", "owner", "due_on", "days_overdue", "care_kind",
               "task_id", "date", "days_until", "complaint_id", "severity", "hours_overdue"),
    "value": ("external_ref", "name", "owner", "clv", "decile", "expected_purchases",
              "expected_spend", "x", "mean_spend", "status", "other_currency"),
    "kpi": ("owner", "customers", "churned", "won_back", "revenue_*", "responses", "csat", "nps",
            "complaints", "complaints_open", "resolution_hours_median",
            "care_tasks_on_time_rate", "care_tasks_overdue", "care_tasks_done", "contacts"),
    "pipeline": ("dimension", "key", "label", "open", "open_amount_*", "weighted_*", "won",
                 "lost", "win_rate", "cycle_days_mean", "reached", "conversion", "share",
                 "lost_amount_*", "won_amount_*", "probability", "next_stage"),
    "funnel": ("section", "month", "stage", "label", "customers", "converted", "conversion_rate"),
    "goals": ("goal_id", "metric", "scope_value", "target", "baseline", "value", "path",
              "on_track", "elapsed", "ends_on"),
}  # fmt: skip

# A table's order when --sort is not given (JSON and CSV keep the report's own, by id).
TABLE_SORT: Final[dict[str, str]] = {"segments": "-monetary", "churn": "p_alive", "value": "-clv"}


@dataclass(frozen=True)
class Selection:
    owner: str | None = None
    segment: str | None = None
    sort: str | None = None  # a column; "-column" for descending
    limit: int | None = None  # None: the format's default; 0: all


def _matches(item: Any, selection: Selection) -> bool:
    if selection.owner is not None and hasattr(item, "owner"):
        owner = item.owner or "(unassigned)"
        if owner != selection.owner:
            return False
    if selection.segment is not None:
        values = [getattr(item, f) for f in SEGMENT_FIELDS if hasattr(item, f)]
        if values and selection.segment not in values:
            return False
    return True


def sort_key(column: str) -> Callable[[Any], tuple[int, Any]]:
    """Numbers (decimal strings included) by value, text by text, empty cells last."""

    def key(value: Any) -> tuple[int, Any]:
        if value is None or value == "":
            return (2, 0)
        if isinstance(value, bool):
            return (0, Decimal(int(value)))
        if isinstance(value, int | float):
            return (0, Decimal(str(value)))
        try:
            return (0, Decimal(str(value)))
        except InvalidOperation:
            return (1, str(value))

    return key


def _ordered(items: list[Any], selection: Selection, get: Callable[[Any, str], Any]) -> list[Any]:
    if selection.sort is None:
        return items
    column = selection.sort.lstrip("-")
    key = sort_key(column)
    present = [i for i in items if get(i, column) not in (None, "")]
    empty = [i for i in items if get(i, column) in (None, "")]
    present.sort(key=lambda i: key(get(i, column)), reverse=selection.sort.startswith("-"))
    return present + empty  # empty cells last either way


def check_sort(columns: list[str], selection: Selection) -> None:
    if selection.sort is not None and selection.sort.lstrip("-") not in columns:
        raise CrmError(
            f"--sort {selection.sort!r}: not a column of this report; one of: " + ", ".join(columns)
        )


def select(report: Any, selection: Selection, limit: int | None) -> Any:
    """``report`` with only the selected items in its lists, sorted and cut to ``limit``."""
    changes: dict[str, list[Any]] = {}
    for field in report.__struct_fields__:
        items = getattr(report, field)
        if not isinstance(items, list) or not items or not isinstance(items[0], msgspec.Struct):
            continue
        kept = [i for i in items if _matches(i, selection)]
        kept = _ordered(kept, selection, lambda i, c: getattr(i, c, None))
        changes[field] = kept[:limit] if limit else kept
    return msgspec.structs.replace(report, **changes) if changes else report


def order_rows(rows: list[dict[str, Any]], selection: Selection) -> list[dict[str, Any]]:
    return _ordered(rows, selection, lambda r, c: r.get(c))


def with_names(
    rows: list[dict[str, Any]], name_of: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Each per-customer row with the customer's name beside its ref (for people only: names
    are personal data, never in a report's JSON or CSV, which stay the same after an erasure)."""
    out = []
    for row in rows:
        if "customer_id" not in row:
            out.append(row)
            continue
        named: dict[str, Any] = {}
        for column, value in row.items():
            named[column] = value
            if column == "external_ref":
                named["name"] = name_of(str(row["customer_id"]))
        out.append(named)
    return out


def table_columns(report_name: str, rows: list[dict[str, Any]], wanted: str | None) -> list[str]:
    """The columns to show: ``--columns a,b,c``, ``all``, or the report's preset."""
    available = list(rows[0]) if rows else []
    if wanted == "all":
        return available
    if wanted is not None:
        chosen = list(dict.fromkeys(c.strip() for c in wanted.split(",") if c.strip()))
        if not chosen:
            raise CrmError(f"--columns {wanted!r} names no column; one of: {', '.join(available)}")
        unknown = [c for c in chosen if c not in available]
        if unknown and rows:
            raise CrmError(
                f"--columns: no column {', '.join(unknown)}; one of: {', '.join(available)}"
            )
        return chosen
    preset = TABLE_COLUMNS.get(report_name)
    if preset is None:
        return available
    columns: list[str] = []
    for c in preset:
        if c.endswith("*"):
            columns += [a for a in available if a.startswith(c[:-1])]
        elif c in available:
            columns.append(c)
    return columns
