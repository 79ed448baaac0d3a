"""Money values: the one formatter of minor units, equal to the exact decimal form."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from crm_es.domain.values import currency_exponent, format_minor, format_minor_many

CURRENCIES = st.sampled_from(["JPY", "CNY", "KWD"])  # 0, 2 and 3 decimals


@given(
    st.one_of(st.integers(-(10**26), 10**26), st.integers(-(2**64), 2**64), st.integers(-999, 999)),
    CURRENCIES,
)
def test_format_minor_equals_the_decimal_format(minor: int, currency: str) -> None:
    exponent = currency_exponent(currency)
    expected = f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"
    assert format_minor(minor, currency) == expected
    assert format_minor_many([minor, 0, -1], currency) == [
        expected,
        *format_minor_many([0, -1], currency),
    ]
    assert format_minor_many([0, -1], "CNY") == ["0.00", "-0.01"]


def test_amounts_beyond_the_decimal_context_are_still_exact() -> None:
    assert format_minor(10**40 + 7, "CNY") == "1" + "0" * 37 + "0.07"
