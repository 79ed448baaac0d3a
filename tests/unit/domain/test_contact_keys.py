"""The normalisation of phones and emails for the contact index, and its keyed hash."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from crm_es.domain.contact_keys import (
    checked_email,
    checked_phone,
    contact_hash,
    normalise_email,
    normalise_phone,
    query_hash,
    stored_hash,
)
from crm_es.domain.errors import InvalidValue
from crm_es.domain.values import ERASED

KEY = bytes(range(32))


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("+86 138 0000 0000", "13800000000"),
        ("0086-138-0000-0000", "13800000000"),
        ("(138) 0000.0000", "13800000000"),
        ("１３８００００００００", "13800000000"),  # full-width digits
        ("+８６ 138 0000 0000", "13800000000"),  # full-width country code
        ("13800000000", "13800000000"),
        ("86 138 0000 0000", "8613800000000"),  # no + nor 00: not taken for a country code
        ("+1 415 555 0100", "14155550100"),  # other country codes stay, as digits
        ("010-1234 5678", "01012345678"),  # a trunk prefix stays
        ("+86+86 1", "861"),  # only one leading code is removed
        ("138 0000 0000 ext 12", "1380000000012"),  # a stored profile: its digits, leniently
    ],
)
def test_a_phone_is_its_digits_without_a_leading_chinese_country_code(
    text: str, digits: str
) -> None:
    assert normalise_phone(text) == digits


@pytest.mark.parametrize("text", ["", "   ", "n/a", "+86", "0086"])
def test_a_phone_without_digits_is_not_indexed(text: str) -> None:
    assert normalise_phone(text) is None
    assert stored_hash(KEY, "phone", text) is None


def test_an_email_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Nana.Ouyang@Example.ORG \n") == "nana.ouyang@example.org"
    assert normalise_email("   ") is None


def test_the_hash_is_hmac_sha256_keyed_over_kind_and_value() -> None:
    expected = hmac.new(KEY, b"phone:13800000000", hashlib.sha256).hexdigest()
    assert contact_hash(KEY, "phone", "13800000000") == expected
    assert stored_hash(KEY, "phone", "+86 138 0000 0000") == expected
    assert query_hash(KEY, "phone", "0086 13800000000") == expected
    # Not the bare SHA-256 of the value, nor the same under another key or kind.
    assert expected != hashlib.sha256(b"13800000000").hexdigest()
    assert contact_hash(bytes(32), "phone", "13800000000") != expected
    assert contact_hash(KEY, "email", "13800000000") != expected


def test_an_erased_or_missing_value_has_no_hash_but_an_email_and_phone_typed_do() -> None:
    assert stored_hash(KEY, "email", None) is None
    assert stored_hash(KEY, "phone", ERASED) is None  # "[erased]" has no digit
    assert query_hash(KEY, "email", " WF@example.com") == stored_hash(
        KEY, "email", "wf@EXAMPLE.com"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc", "digits, spaces"),
        ("138 0000 000x", "digits, spaces"),
        ("138\x000000", "control"),
        ("\u202e138", "control"),
        ("1" * 41, "longer than 40"),
        ("1" * 21, "more than 20 digits"),
        ("()-+ .", "needs digits"),
        ("", "needs digits"),
    ],
)
def test_a_phone_asked_for_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidValue, match=why):
        checked_phone(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("no-at-sign", "local@domain"),
        ("a@b@c", "local@domain"),
        ("@example.com", "local@domain"),
        ("a b@example.com", "no space"),
        ("a@example.com\x00", "control"),
        ("a@" + "x" * 260, "longer than 254"),
        ("", "local@domain"),
    ],
)
def test_an_email_asked_for_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidValue, match=why):
        checked_email(text)


def test_a_phone_and_email_asked_for_normalise_as_the_stored_ones() -> None:
    assert checked_phone("+86 (138) 0000-0000") == "13800000000"
    assert checked_email("  WF@Example.com ") == "wf@example.com"
