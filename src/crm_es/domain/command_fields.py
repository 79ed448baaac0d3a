"""The field types of the command schemas: ids, money, texts, currencies, aware times, points
and scores, each a constrained ``str`` / ``int`` / ``datetime`` that msgspec checks while it
decodes (with a ``$.path`` on failure), before any domain code runs.

Kept apart from :mod:`crm_es.domain.commands` (which uses them for every command) so that module
stays the vocabulary of commands alone; :mod:`crm_es.domain.command_errors` explains each
pattern in words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from msgspec import Meta

from crm_es.domain.values import MAX_SCORE

# Patterns end in \Z, never $: Python's $ also matches before a final newline, which let
# "C-1\n" pass as an id and "129.90\n" as money.

# No C0 control characters except tab, newline and carriage return, no DEL, and no lone
# surrogate halves: they break terminals, CSV and PostgreSQL text columns (NUL), cannot be
# stored as UTF-8 at all (surrogates), and are never meaningful in CRM data.
_NO_CONTROL: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]*\Z"

# Characters that show nothing or reorder what follows (zero-width, joiners, bidirectional
# controls and isolates, variation selectors, the BOM, fillers, line and paragraph
# separators, C1 controls, tag characters): two identifiers that differ only by them look the
# same to a person.
_INVISIBLE: Final = (
    "\x80-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f"
)
_ID_CHAR: Final = f"[^\\x00-\\x1f\\x7f\\ud800-\\udfff{_INVISIBLE}]"
# First and last a visible character (``\s`` alone would let a NUL through): an id never
# starts or ends with a space of any kind, so "C-1", " C-1" and "C-1\u00a0" are not three ids.
_ID_EDGE: Final = f"[^\\s\\x00-\\x1f\\x7f\\ud800-\\udfff{_INVISIBLE}]"
Id = Annotated[
    str,
    Meta(min_length=1, max_length=128, pattern=f"^{_ID_EDGE}(?:{_ID_CHAR}*{_ID_EDGE})?\\Z"),
]
"""An identifier or short code: order id, complaint id, external ref, staff id, tag. No
control, invisible or bidirectional characters (look-alike ids); refs are compared in Unicode
NFC (:func:`crm_es.domain.ids.customer_id_for_ref`)."""
Amount = Annotated[str, Meta(max_length=40, pattern=r"^(0|[1-9][0-9]*)(\.[0-9]+)?\Z")]
"""Money: a decimal string of ASCII digits (``"129.90"``), never a JSON number (binary floating
point), an exponent, a sign, full-width digits or separators."""
Text = Annotated[str, Meta(max_length=200, pattern=_NO_CONTROL)]
"""A short free-text field: a name, a region, a category, a resolution code."""
LongText = Annotated[str, Meta(max_length=4000, pattern=_NO_CONTROL)]
"""A long free-text field: a contact summary, a complaint description, a comment."""
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}\Z")]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Points = Annotated[int, Meta(gt=0, le=1_000_000_000)]
Score = Annotated[int, Meta(ge=-MAX_SCORE, le=MAX_SCORE)]
Figure = Annotated[str, Meta(max_length=40, pattern=r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?\Z")]
"""A target figure: a decimal string of ASCII digits that may be negative (an NPS of ``"-5"``),
never a JSON number."""
