"""Value types shared by commands, events and read models: money, and the closed vocabularies.

Money is integer minor units plus an ISO 4217 code: never a float, and never more decimals than the
currency has (``129.905 CNY`` is an input error, not something to round silently).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

from crm_es.domain.errors import InvalidValue, UnknownCurrency

# ISO 4217 minor-unit exponents of the currencies we accept. Kept explicit (not a library) because
# an# unknown currency must be an input error, and the table is tiny and stable.
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    "CNY": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2,
    "AUD": 2, "NZD": 2, "SGD": 2, "MYR": 2, "THB": 2, "INR": 2, "PHP": 2, "IDR": 2, "VND": 0,
    "JPY": 0, "KRW": 0, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RUB": 2,
    "BRL": 2, "MXN": 2, "ZAR": 2, "AED": 2, "SAR": 2, "TRY": 2, "ILS": 2, "KWD": 3, "BHD": 3,
    "OMR": 3, "JOD": 3, "TND": 3,
}  # fmt: skip

# A single amount above this is treated as an input error (it is ~10^13 major units): it guards the
# 64-bit integer columns of read models and catches garbage such as "1e400".
MAX_MINOR_UNITS: Final = 10**15
# The largest line-item quantity and survey score (or scale bound) a command may carry.
MAX_QUANTITY: Final = 1_000_000
MAX_SCORE: Final = 1000


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None


class Money(msgspec.Struct, frozen=True):
    """An amount in integer minor units of an ISO 4217 currency."""

    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: Decimal | str | int, currency: str, field: str = "amount") -> Money:
        """Parse a decimal amount; reject NaN, infinity, negatives and excess precision."""
        exponent = currency_exponent(currency)
        try:
            value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
        except InvalidOperation:
            raise InvalidValue(field, amount, "not a decimal number") from None
        if not value.is_finite():
            raise InvalidValue(field, str(value), "must be a finite number")
        if value < 0:
            raise InvalidValue(field, str(value), "must not be negative")
        if value.is_zero():
            return cls(0, currency)
        # Exact, from the digits: Decimal arithmetic would round to 28 digits (accepting
        # "100.0000000000000000000000000000001" as 100) or overflow ("1e999999999").
        if value.adjusted() + exponent > len(str(MAX_MINOR_UNITS)):
            raise InvalidValue(field, str(value), "amount is implausibly large")
        # as_integer_ratio is exact; the checks around it bound the integers it builds
        # (a nonzero amount below one minor unit, such as "1e-999999999", never gets there).
        if value.adjusted() < -exponent:
            minor, remainder = 0, 1
        else:
            numerator, denominator = value.as_integer_ratio()
            minor, remainder = divmod(numerator * 10**exponent, denominator)
        if remainder:
            raise InvalidValue(
                field, str(value), f"{currency} allows at most {exponent} decimal places"
            )
        if minor > MAX_MINOR_UNITS:
            raise InvalidValue(field, str(value), "amount is implausibly large")
        return cls(minor, currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-currency_exponent(self.currency))

    def __str__(self) -> str:
        exponent = currency_exponent(self.currency)
        return f"{self.to_decimal():.{exponent}f} {self.currency}"


def format_minor(minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's exact number of decimals
    (``12990, "CNY"`` -> ``"129.90"``, ``-5, "CNY"`` -> ``"-0.05"``, ``500, "JPY"`` -> ``"500"``):
    the one money formatter of every view, report and export."""
    return format_minor_many((minor,), currency)[0]


_FRACTIONS: dict[int, list[str]] = {}


def format_minor_many(amounts: Iterable[int], currency: str) -> list[str]:
    """:func:`format_minor` of each amount, for a whole report column at once."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return [str(minor) for minor in amounts]
    unit = 10**exponent
    fractions = _FRACTIONS.get(exponent)
    if fractions is None:
        fractions = _FRACTIONS[exponent] = [f".{f:0{exponent}d}" for f in range(unit)]
    out = []
    for minor in amounts:
        whole, fraction = divmod(-minor if minor < 0 else minor, unit)
        out.append(("-" if minor < 0 else "") + str(whole) + fractions[fraction])
    return out


class CustomerKind(enum.StrEnum):
    INDIVIDUAL = "individual"
    COMPANY = "company"


class Category(enum.StrEnum):
    """Where the relationship stands commercially (design §4 identity): the seeds' 潜在, 意向,
    准 and 签约 customers in the order a customer moves through them, then partners and
    internal accounts, which stand outside that funnel. Values are stored in events: add,
    never rename."""

    POTENTIAL = "potential"  # 潜在客户: known, no interest shown yet
    INTENDED = "intended"  # 意向客户: has shown interest (e.g. a first sales opportunity)
    PROSPECTIVE = "prospective"  # 准客户: about to buy (set by staff)
    SIGNED = "signed"  # 签约客户: has bought or signed (a first purchase, a won opportunity)
    PARTNER = "partner"
    INTERNAL = "internal"


# The seeds' names of the categories, for people (the wire and the store use the values).
CATEGORY_LABELS: Final = {
    Category.POTENTIAL: "潜在客户",
    Category.INTENDED: "意向客户",
    Category.PROSPECTIVE: "准客户",
    Category.SIGNED: "签约客户",
    Category.PARTNER: "合作伙伴",
    Category.INTERNAL: "内部客户",
}
# The categories a customer moves through on its way to buying, in order (the funnel).
FUNNEL_CATEGORIES: Final = (
    Category.POTENTIAL, Category.INTENDED, Category.PROSPECTIVE, Category.SIGNED,
)  # fmt: skip


class Channel(enum.StrEnum):
    """Every channel a customer can reach us or buy through."""

    PHONE = "phone"
    EMAIL = "email"
    WECHAT = "wechat"
    SOCIAL = "social"
    CHAT = "chat"
    VISIT = "visit"
    SMS = "sms"
    STORE = "store"
    ONLINE = "online"
    APP = "app"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ServicePhase(enum.StrEnum):
    PRE_SALE = "pre-sale"
    IN_SALE = "in-sale"
    AFTER_SALE = "after-sale"


class ServiceKind(enum.StrEnum):
    CONSULTATION = "consultation"
    DEMO = "demo"
    DELIVERY = "delivery"
    INSTALLATION = "installation"
    MAINTENANCE = "maintenance"
    TRAINING = "training"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


# Hours to resolve a complaint, by severity. The SLA due time is computed when the complaint is
# filed and stored on the event, so a later change of policy never rewrites history.
SLA_HOURS: Final[dict[Severity, int]] = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 24,
    Severity.MEDIUM: 72,
    Severity.LOW: 168,
}


class Metric(enum.StrEnum):
    CSAT = "csat"
    NPS = "nps"
    CES = "ces"
    GAP = "gap"  # expectation + performance pair, SERVQUAL style


# The scale assumed when a survey answer does not state one. Every answer is stored with its scale.
DEFAULT_SCALES: Final[dict[Metric, tuple[int, int]]] = {
    Metric.CSAT: (1, 5),
    Metric.NPS: (0, 10),
    Metric.CES: (1, 7),
    Metric.GAP: (1, 7),
}


class LawfulBasis(enum.StrEnum):
    """Why personal data may be processed (GDPR art. 6, PIPL art. 13), or that consent was
    withdrawn: a closed list, so this field can never carry personal data in clear."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"
    WITHDRAWN = "withdrawn"


class CareKind(enum.StrEnum):
    RETURN_VISIT = "return_visit"  # 回访
    BIRTHDAY_GREETING = "birthday_greeting"
    HOLIDAY_GREETING = "holiday_greeting"
    CHECK_IN = "check_in"


class Tier(enum.StrEnum):
    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


# Rolling 12-month net spend (in TIER_CURRENCY minor units) needed for each tier, highest first.
TIER_CURRENCY: Final = "CNY"
TIER_THRESHOLDS: Final[tuple[tuple[Tier, int], ...]] = (
    (Tier.PLATINUM, 50_000_00),
    (Tier.GOLD, 20_000_00),
    (Tier.SILVER, 5_000_00),
    (Tier.STANDARD, 0),
)


def tier_for_spend(minor: int) -> Tier:
    for tier, threshold in TIER_THRESHOLDS:
        if minor >= threshold:
            return tier
    return Tier.STANDARD


ERASED: Final = "[erased]"
"""What a personal field reads as once the customer's key has been deleted."""
