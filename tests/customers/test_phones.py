"""Phone normalisation and the keyed hash: pure functions."""

from __future__ import annotations

import pytest

from o2oloop.customers.phones import normalise, phone_hash
from o2oloop.errors import InvalidInput


@pytest.mark.parametrize(
    "raw",
    ["+86 138 0013 8000", "+8613800138000", "13800138000", "138-0013-8000", "008613800138000"],
)
def test_chinese_numbers_in_any_format_are_one_e164(raw: str) -> None:
    assert normalise(raw, "CN") == "+8613800138000"


def test_national_numbers_read_in_the_merchants_country() -> None:
    assert normalise("(650) 253-0000", "US") == "+16502530000"
    assert normalise("020 7946 0018", "GB") == "+442079460018"
    # An international number is the same whatever the merchant's country.
    assert normalise("+86 138 0013 8000", "US") == "+8613800138000"


@pytest.mark.parametrize("raw", ["", "   ", "12345", "not a phone", "+86 000", "1" * 40])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise(raw, "CN")


def test_the_hash_is_keyed() -> None:
    digest = phone_hash("+8613800138000", "secret-one")
    assert len(digest) == 64
    assert digest == phone_hash("+8613800138000", "secret-one")
    assert digest != phone_hash("+8613800138000", "secret-two")
    assert digest != phone_hash("+8613800138001", "secret-one")
