"""Money as integer minor units plus a currency: no floats anywhere near money."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

# ISO 4217 minor-unit exponents for the currencies merchants may use.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "TWD": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
}
SUPPORTED_CURRENCIES = tuple(sorted(MINOR_UNITS))


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unsupported currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def share_bps(self, basis_points: int) -> Money:
        """The share of this amount at `basis_points`/10,000, rounded half up.

        Used for commission: the platform takes the rounded share, so whatever the rounding
        leaves over stays with the merchant (the merchant gets `self - share`).
        """
        if not 0 <= basis_points <= 10_000:
            raise ValueError("basis points must be within 0..10000")
        numerator = self.amount * basis_points
        share = (abs(numerator) + 5_000) // 10_000
        return Money(share if numerator >= 0 else -share, self.currency)

    def format(self) -> str:
        exp = MINOR_UNITS[self.currency]
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exp) if exp else (abs(self.amount), 0)
        return (
            f"{sign}{units}.{minor:0{exp}d} {self.currency}"
            if exp
            else f"{sign}{units} {self.currency}"
        )

    def __str__(self) -> str:
        return self.format()
