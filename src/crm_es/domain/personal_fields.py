"""Which values of an event are personal data, one declaration per field.

An event class lists its personal fields in ``PII_FIELDS``, as paths: ``"name"`` (a text field),
``"added[]"`` (a list of texts), ``"items[].name"`` (a text inside each struct of a list). The
store encrypts exactly the values these paths reach, with the customer's own key; an erased
customer's commands may not set any of them. Adding a field that may hold personal data means
adding its path here, in its class: nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec


class Path(NamedTuple):
    field: str
    in_list: bool  # the field is a list: each element (or each element's ``inner``)
    inner: str | None  # the text field of each struct in the list


_PATHS: dict[tuple[type[Any], frozenset[str] | None], tuple[Path, ...]] = {}


def paths(cls: type[Any], only: frozenset[str] | None = None) -> tuple[Path, ...]:
    """The parsed ``PII_FIELDS`` of ``cls`` (those in ``only``, when given)."""
    found = _PATHS.get((cls, only))
    if found is None:
        found = _PATHS[(cls, only)] = _parse(cls, only)
    return found


def _parse(cls: type[Any], only: frozenset[str] | None) -> tuple[Path, ...]:
    parsed = []
    for declared in getattr(cls, "PII_FIELDS", ()):
        if only is not None and declared not in only:
            continue
        field, _, inner = declared.partition("[]")
        parsed.append(Path(field, "[]" in declared, inner.lstrip(".") or None))
    return tuple(parsed)


def _has_text(value: Any) -> bool:
    return value is not None and value is not msgspec.UNSET


def holds_personal_data(event: Any) -> bool:
    """Whether any personal path of ``event`` has a value."""
    for path in paths(type(event)):
        value = getattr(event, path.field)
        if not path.in_list:
            if _has_text(value):
                return True
        elif path.inner is None:
            if value:
                return True
        elif any(_has_text(getattr(item, path.inner)) for item in value):
            return True
    return False


def map_personal(
    event: Any, fn: Callable[[str], str], only: frozenset[str] | None = None
) -> dict[str, Any]:
    """The changed fields of ``event`` with ``fn`` applied to every personal text (lists
    rebuilt, structs inside them replaced), for ``msgspec.structs.replace`` or in-place
    setting. Fields without a text are left out."""
    changes: dict[str, Any] = {}
    for path in paths(type(event), only):
        value = getattr(event, path.field)
        if not path.in_list:
            if isinstance(value, str):
                changes[path.field] = fn(value)
        elif path.inner is None:
            if value:
                changes[path.field] = [fn(v) if isinstance(v, str) else v for v in value]
        elif value:
            inner = path.inner
            changes[path.field] = [
                msgspec.structs.replace(item, **{inner: fn(text)})
                if isinstance(text := getattr(item, inner), str)
                else item
                for item in value
            ]
    return changes
