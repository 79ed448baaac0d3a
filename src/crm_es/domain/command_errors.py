"""Errors that teach: a schema error of a command, in msgspec's words and with its ``$.path``,
plus what the field takes — the valid command types (closest first), an enum's allowed values,
the rule a pattern stands for — instead of a regular expression.

Only the error path runs this; a valid command never does.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Final

import msgspec

# The human rule behind each pattern the command schemas use (by the pattern's text).
_MONEY: Final = (
    'a decimal string of ASCII digits such as "129.90" (not a JSON number; no sign, exponent, '
    "separators or full-width digits)"
)
_RULES: Final[dict[str, str]] = {
    r"^(0|[1-9][0-9]*)(\.[0-9]+)?\Z": _MONEY,
    r"^[A-Z]{3}\Z": "a three-letter currency code in capitals, such as CNY",
    r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?\Z": 'a decimal string such as "85" or "-5.5" (not a JSON '
    "number; no exponent, separators or full-width digits)",
}
_ID_RULE: Final = (
    "1 to 128 characters, not starting or ending with a space; no control, invisible "
    "(zero-width, tag, separator) or bidirectional characters"
)
_TEXT_RULE: Final = "text without control characters"
_CLOSEST: Final = 12
_AT: Final = re.compile(r"^(?P<text>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_VALUE: Final = re.compile(r"'(?P<value>[^']*)'")


class _TypeOnly(msgspec.Struct):
    type: str | None = None


def explained(
    error: msgspec.ValidationError, types: dict[str, type[Any]], data: bytes | str | None = None
) -> msgspec.ValidationError:
    """``error`` with what the field takes added. ``types``: command type name -> class;
    ``data``: the JSON that failed (to learn its ``type``), or None for a command whose class
    is in ``types`` under the name of the ``type`` in the error's path."""
    text = str(error)
    names = sorted(types)
    if text == "Object missing required field `type`":
        return msgspec.ValidationError(f"{text}: one of {', '.join(names)}")
    found = _AT.match(text)
    if found is None:
        return error
    message, path = found["text"], found["path"]
    if path == ".type" and not message.startswith("Invalid value"):  # null, a number…
        return msgspec.ValidationError(f"{text}: a command type, one of {', '.join(names)}")
    if path == ".type" and message.startswith("Invalid value"):
        given = _value(message)
        ordered = difflib.get_close_matches(given, names, n=len(names), cutoff=0.0)
        # The closest ones only: the whole vocabulary would drown the line it answers.
        rest = len(ordered) - _CLOSEST
        more = f" and {rest} more" if rest > 0 else ""
        return msgspec.ValidationError(
            f"{text}: not a command type; valid types, closest first: "
            + ", ".join(ordered[:_CLOSEST])
            + more
        )
    command = types.get(_type_of(data)) if data is not None else None
    field = _field_type(command, path) if command is not None else None
    hint = _hint(message, field, path)
    if not hint:
        return error
    if message.startswith("Expected `str` matching regex"):  # the rule says it better
        message = "Expected `str` matching its rule"
    return msgspec.ValidationError(f"{message} - at `${path}`: {hint}")


def _value(message: str) -> str:
    found = _VALUE.search(message)
    return found["value"] if found else ""


def _type_of(data: bytes | str) -> str:
    try:
        return msgspec.json.decode(data, type=_TypeOnly).type or ""
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return ""  # the hint is left out; the error itself still says what is wrong


def _field_type(command: type[Any], path: str) -> msgspec.inspect.Type | None:
    """The msgspec type of the field at ``path`` (``.items[0].quantity``) of ``command``."""
    current: msgspec.inspect.Type = msgspec.inspect.type_info(command)
    for step in re.findall(r"\.([A-Za-z_]\w*)|\[\d+\]", path):
        current = _unwrapped(current)
        if step == "":  # an index: the list's item type
            if not isinstance(current, msgspec.inspect.ListType):
                return None
            current = current.item_type
            continue
        if not isinstance(current, msgspec.inspect.StructType):
            return None
        match = [f for f in current.fields if f.encode_name == step]
        if not match:
            return None
        current = match[0].type
    return _unwrapped(current)


def _unwrapped(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The type inside an optional (``X | None``)."""
    if isinstance(t, msgspec.inspect.UnionType):
        rest = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return t


def _hint(message: str, field: msgspec.inspect.Type | None, path: str) -> str:
    if message == "Invalid RFC3339 encoded date":
        return "a date is written YYYY-MM-DD, e.g. 2026-01-31"
    if message.startswith("Invalid RFC3339 encoded datetime") or "timezone" in message:
        return "a time is ISO 8601 with its offset, e.g. 2026-01-05T10:00:00+08:00"
    if isinstance(field, msgspec.inspect.EnumType):
        allowed = ", ".join(str(m.value) for m in field.cls)
        return f"allowed values: {allowed}"
    if path.rsplit(".", 1)[-1] in ("amount", "compensation"):
        return f"money is {_MONEY}"
    if isinstance(field, msgspec.inspect.StrType) and field.pattern is not None:
        if field.pattern in _RULES:
            return f"must be {_RULES[field.pattern]}"
        if field.min_length == 1:
            return f"must be {_ID_RULE}"
        return f"must be {_TEXT_RULE}"
    return ""
