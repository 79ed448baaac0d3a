"""The care rules ``crm-es maintain`` schedules tasks by: a versioned TOML file, checked by a
schema.

The defaults ship beside this module (``care_rules.toml``); ``crm-es maintain --care-rules PATH``
reads another file. Each table is one rule, and a rule left out of a file schedules nothing, so
a file says everything that will happen without hidden defaults. Errors name the file, the
``$.path`` of the offending key and what it takes (the allowed keys, values or range), because
the person reading them is editing a file by hand at night, not reading this code.

What each rule selects is in :mod:`crm_es.app.care_scheduler`.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import Meta

from crm_es.domain.command_fields import Amount, Currency, Text
from crm_es.domain.errors import CrmError
from crm_es.domain.values import CURRENCY_EXPONENTS, TIER_CURRENCY, Money

RULES_VERSION: Final = 1
DEFAULT_RULES_FILE: Final = "care_rules.toml"

# Days are bounded so that a typo (70000) is an error rather than a rule that never fires.
Days = Annotated[int, Meta(ge=0, le=3660)]
HighValue = Literal["top_monetary_quintile", "min_net_spend"]


class CareRulesError(CrmError):
    """A care rules file that cannot be read or does not follow the schema."""


class _Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True


class Holiday(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    date: date
    name: Text


class BirthdayGreeting(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_ahead: Days


class HolidayGreeting(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_ahead: Days
    holidays: Annotated[list[Holiday], Meta(max_length=1000)]


class FirstPurchaseVisit(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_after: Days


class LargePurchaseVisit(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_after: Days
    min_amount: Amount
    currency: Currency = TIER_CURRENCY


class ComplaintVisit(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_after: Days


class CheckIn(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    days_silent: Annotated[int, Meta(ge=1, le=3660)]


class WinBack(_Rule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    high_value: HighValue
    min_net_spend: Amount | None = None  # needed by high_value = "min_net_spend"
    currency: Currency = TIER_CURRENCY
    days_to_act: Days = 0


class CareRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Literal[1]
    catch_up_days: Days = 30
    birthday_greeting: BirthdayGreeting | None = None
    holiday_greeting: HolidayGreeting | None = None
    first_purchase_visit: FirstPurchaseVisit | None = None
    large_purchase_visit: LargePurchaseVisit | None = None
    complaint_visit: ComplaintVisit | None = None
    check_in: CheckIn | None = None
    win_back: WinBack | None = None

    def enabled(self) -> list[str]:
        """Names of the rules that will schedule something, in file order."""
        return [name for name in RULE_NAMES if self.rule(name) is not None]

    def rule(self, name: str) -> Any:
        """The rule ``name`` when present and enabled, else None."""
        found = getattr(self, name)
        return found if found is not None and found.enabled else None


RULE_NAMES: Final = tuple(
    f for f in CareRules.__struct_fields__ if f not in ("version", "catch_up_days")
)


def default_rules() -> CareRules:
    """The rules shipped with the package."""
    text = resources.files("crm_es.app").joinpath(DEFAULT_RULES_FILE).read_text("utf-8")
    return parse_rules(text, DEFAULT_RULES_FILE)


def load_rules(path: str | Path) -> CareRules:
    """The rules in the TOML file ``path``; :class:`CareRulesError` naming what is wrong."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL in the path
        raise CareRulesError(f"{path}: cannot read the care rules: {e}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str = "care rules") -> CareRules:
    """Check and decode the rules in TOML ``text``; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CareRulesError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise CareRulesError(f"{source}: not valid TOML: nested too deeply") from None
    except ValueError as e:  # an integer past Python's digit limit
        raise CareRulesError(f"{source}: not valid TOML: {e}") from None
    if data.get("version") != RULES_VERSION:
        got = repr(data["version"]) if "version" in data else "no version key"
        raise CareRulesError(
            f"{source}: $.version must be {RULES_VERSION} (the only version this crm-es reads), "
            f"got {got}"
        )
    try:
        rules = msgspec.convert(data, CareRules)
    except msgspec.ValidationError as e:
        raise CareRulesError(f"{source}: {explain(str(e))}") from None
    _check_values(rules, source)
    return rules


def _check_values(rules: CareRules, source: str) -> None:
    """What the schema cannot say: known currencies, amounts in their precision, and the
    amount a chosen high-value rule needs."""
    for name, path in (("large_purchase_visit", "min_amount"), ("win_back", "min_net_spend")):
        rule = getattr(rules, name)
        if rule is None:
            continue
        where = f"$.{name}"
        if rule.currency not in CURRENCY_EXPONENTS:
            known = ", ".join(sorted(CURRENCY_EXPONENTS))
            raise CareRulesError(
                f"{source}: {where}.currency: {rule.currency!r} is not a supported currency; "
                f"allowed: {known}"
            )
        amount = getattr(rule, path)
        if amount is not None:
            try:
                Money.parse(amount, rule.currency, f"{where}.{path}")
            except CrmError as e:
                raise CareRulesError(f"{source}: {e}") from None
    win_back = rules.win_back
    if (
        win_back is not None
        and win_back.high_value == "min_net_spend"
        and not win_back.min_net_spend
    ):
        raise CareRulesError(
            f'{source}: $.win_back.min_net_spend is required by high_value = "min_net_spend" '
            '(an amount such as "20000.00")'
        )


# --- errors that teach --------------------------------------------------------------------------

_AT: Final = re.compile(r"^(?P<text>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_STEP: Final = re.compile(r"\.(\w+)|\[(\d+)\]")


def explain(message: str) -> str:
    """msgspec's ``message`` with what the field (or table) at its ``$.path`` takes."""
    found = _AT.match(message)
    path = found["path"] if found else ""
    text = found["text"] if found else message
    shape = _type_at(CareRules, path)
    if text.startswith("Object contains unknown field"):
        where = "" if found else " - at `$`"
        return f"{message}{where}; allowed keys: {', '.join(_keys(shape))}"
    if text.startswith("Object missing required field"):
        return f"{message} (at `${path or ''}` the keys are: {', '.join(_keys(shape))})"
    field = _type_at(shape, "") if shape is not None else None
    hint = _takes(field)
    return f"{message}: allowed {hint}" if hint else message


def _type_at(root: Any, path: str) -> Any:
    """The annotated type found at ``path`` (``.a.b[0].c``) below ``root``, or None."""
    current: Any = root
    for name, index in _STEP.findall(path):
        current = _unwrap(current)
        if index:
            args = get_args(current)
            current = args[0] if get_origin(current) is list and args else None
        elif isinstance(current, type) and issubclass(current, msgspec.Struct):
            current = get_type_hints(current, include_extras=True).get(name)
        else:
            return None
        if current is None:
            return None
    return current


def _unwrap(kind: Any) -> Any:
    """``kind`` without ``Annotated`` and ``| None``."""
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    args = [a for a in get_args(kind) if a is not type(None)]
    if args and get_origin(kind) is not list and get_origin(kind) is not Literal and len(args) == 1:
        return _unwrap(args[0])
    return kind


def _keys(kind: Any) -> list[str]:
    kind = _unwrap(kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return list(kind.__struct_fields__)
    return []


def _takes(kind: Any) -> str:
    """What a field of type ``kind`` takes, in words ("" when msgspec said enough)."""
    if kind is None:
        return ""
    bounds = (
        [m for m in get_args(kind)[1:] if isinstance(m, Meta)]
        if get_origin(kind) is Annotated
        else []
    )
    base = _unwrap(kind)
    if get_origin(base) is Literal:
        return "values: " + ", ".join(repr(v) for v in get_args(base))
    if base is Amount or (bounds and bounds[0].pattern and "0-9" in bounds[0].pattern):
        return 'an amount as a string of digits, such as "5000.00"'
    if bounds and bounds[0].pattern == r"^[A-Z]{3}\Z":
        return "a three-letter currency code in capitals, such as CNY"
    if bounds and (bounds[0].ge is not None or bounds[0].le is not None):
        return f"a whole number from {bounds[0].ge} to {bounds[0].le}"
    if base is bool:
        return "true or false"
    if base is date:
        return "a TOML date such as 2026-02-17 (not quoted)"
    return ""
