"""The keys a customer is found by (客户识别, "who is calling?"): a phone or an email, normalised,
then hashed with a secret of the store, so the index that finds them never holds the value.

Normalisation (one rule for what is indexed and what is asked, so the two meet):

- **phone**: the text in Unicode NFKC (full-width digits become ASCII ones), only its digits and
  ``+`` kept; a leading ``+86`` or ``0086`` (China's country code) is removed, then the ``+``
  signs. ``+86 138 0000 0000``, ``0086-13800000000``, ``(138) 0000-0000`` and full-width
  ``１３８００００００００`` are all ``13800000000``. Other country codes stay, as digits
  (``+1 415 …`` -> ``1415…``); a trunk prefix ``0`` stays (``010-1234 5678`` ->
  ``01012345678``). No digit: nothing indexed.
- **email**: trimmed and lower-cased (``Nana@Example.ORG `` -> ``nana@example.org``); an empty
  text: nothing indexed.

What a stored profile holds is indexed leniently (whatever digits it has), but what a person
asks for is checked: a phone of digits, spaces and ``+ - ( ) .`` only, an email with one ``@``,
no control character, neither longer than a real one can be.

The hash is HMAC-SHA256 keyed with the store's contact-index secret (derived from the master
key, which never enters the store), over ``kind:value``: a copy of the database cannot be
searched for a known phone, and an email never collides with a phone.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from typing import Final, Literal

from crm_es.domain.errors import InvalidValue

ContactKind = Literal["phone", "email"]
CONTACT_KINDS: Final[tuple[ContactKind, ...]] = ("phone", "email")

COUNTRY_PREFIXES: Final = ("+86", "0086")  # removed from the front of a phone
MAX_PHONE_TEXT: Final = 40  # characters of a phone asked for (spaces and signs included)
MAX_PHONE_DIGITS: Final = 20  # ITU E.164 allows 15; extensions typed in a few more
MAX_EMAIL: Final = 254  # RFC 5321's longest path
_PHONE_SIGNS: Final = frozenset(" +-().")


def normalise_phone(text: str) -> str | None:
    """The phone's digits by the module's rule; None when it has none."""
    plain = unicodedata.normalize("NFKC", text)
    kept = "".join(c for c in plain if c == "+" or (c.isascii() and c.isdigit()))
    for prefix in COUNTRY_PREFIXES:
        if kept.startswith(prefix):
            kept = kept[len(prefix) :]
            break
    digits = kept.replace("+", "")
    return digits or None


def normalise_email(text: str) -> str | None:
    """The email trimmed and lower-cased; None when nothing is left."""
    value = text.strip().lower()
    return value or None


def normalise(kind: ContactKind, text: str) -> str | None:
    return normalise_phone(text) if kind == "phone" else normalise_email(text)


def contact_hash(key: bytes, kind: ContactKind, normalised: str) -> str:
    """The index's hash (hex) of a normalised value of ``kind``."""
    message = f"{kind}:{normalised}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def stored_hash(key: bytes, kind: ContactKind, text: str | None) -> str | None:
    """The hash of a profile's value as stored (None: no value, or nothing to index in it)."""
    if text is None:
        return None
    value = normalise(kind, text)
    return None if value is None else contact_hash(key, kind, value)


def _printable(kind: ContactKind, text: str, limit: int) -> None:
    if len(text) > limit:
        raise InvalidValue(kind, text[:40] + "…", f"longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise InvalidValue(kind, text, "holds a control or invisible character")


def checked_phone(text: str) -> str:
    """The normalised phone a person asked for, or InvalidValue saying what is wrong."""
    _printable("phone", text, MAX_PHONE_TEXT)
    plain = unicodedata.normalize("NFKC", text)
    wrong = sorted({c for c in plain if not c.isascii() or not (c.isdigit() or c in _PHONE_SIGNS)})
    if wrong:
        why = f"a phone is digits, spaces and + - ( ) . only, not {''.join(wrong[:5])!r}"
        raise InvalidValue("phone", text, why)
    digits = normalise_phone(plain)
    if digits is None:
        raise InvalidValue("phone", text, "a phone needs digits")
    if len(digits) > MAX_PHONE_DIGITS:
        raise InvalidValue("phone", text, f"more than {MAX_PHONE_DIGITS} digits")
    return digits


def checked_email(text: str) -> str:
    """The normalised email a person asked for, or InvalidValue saying what is wrong."""
    _printable("email", text, MAX_EMAIL)
    value = normalise_email(text)
    if value is None or value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
        raise InvalidValue("email", text, "an email is local@domain")
    if any(c.isspace() for c in value):
        raise InvalidValue("email", text, "an email holds no space")
    return value


def query_hash(key: bytes, kind: ContactKind, text: str) -> str:
    """The hash to look up for what a person typed (checked first)."""
    value = checked_phone(text) if kind == "phone" else checked_email(text)
    return contact_hash(key, kind, value)
