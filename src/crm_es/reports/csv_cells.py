"""Cells of the CSV files the project writes, safe to open in a spreadsheet.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or
a carriage return before one) as a formula, so a customer ref such as ``=HYPERLINK("http://…")``
written as it is would run when a team lead opens the report (CSV or formula injection). As
OWASP recommends, such a cell is written with a single quote ``'`` before it, which spreadsheets
show as text and programs can strip. Every CSV writer goes through :func:`spreadsheet_cell`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

import msgspec

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

# A plain number keeps its sign: "-12.50" (a refund, a negative change) must stay a number that
# sums in a spreadsheet, and a cell of only a sign, ASCII digits and at most one decimal point
# can never be read as a formula. Anything more (an exponent, "1+1", "-1-1", a space, full-width
# digits) is escaped: a spreadsheet may evaluate it, and no report writes numbers that way.
_PLAIN_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def escape_formula(text: str) -> str:
    """``text``, with ``'`` before it when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def spreadsheet_cell(value: object) -> object:
    """What a CSV writer writes for ``value``: numbers as they are, lists and dicts as JSON,
    nothing for None, and every other value as text escaped by :func:`escape_formula`."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value  # a number is written by its repr, which is never a formula
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()  # starts with [ or {: never a formula
    return escape_formula(str(value))
