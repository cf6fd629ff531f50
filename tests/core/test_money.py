"""Money: integer minor units, same-currency arithmetic, commission rounding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2oloop.money import CurrencyMismatch, Money


def test_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(100, "XXX")


def test_mixing_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(1, "CNY") + Money(1, "USD")


def test_commission_rounds_half_up_and_the_merchant_keeps_the_rest() -> None:
    price = Money(8_850, "CNY")  # 88.50
    commission = price.share_bps(333)  # 3.33% of 88.50 = 2.94705 → 2.95
    assert commission == Money(295, "CNY")
    assert price - commission == Money(8_555, "CNY")
    assert Money(1, "CNY").share_bps(5_000) == Money(1, "CNY")  # 0.5 rounds up


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(0, 10_000))
def test_share_never_exceeds_the_amount_and_parts_add_up(amount: int, bps: int) -> None:
    whole = Money(amount, "CNY")
    share = whole.share_bps(bps)
    assert abs(share.amount) <= abs(amount)
    assert share + (whole - share) == whole
    assert abs(share.amount * 10_000 - amount * bps) <= 5_000


def test_format() -> None:
    assert Money(12_800, "CNY").format() == "128.00 CNY"
    assert Money(-5, "USD").format() == "-0.05 USD"
    assert Money(500, "JPY").format() == "500 JPY"
