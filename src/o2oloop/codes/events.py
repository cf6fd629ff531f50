"""What happens to codes: claimed, redeemed at the counter, undone, refunded."""

from __future__ import annotations

from dataclasses import dataclass

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class CodeClaimed(Event):
    """A consumer holds a new code: claimed for free, or issued once a voucher was paid."""

    name = "code.claimed"
    merchant_id: str
    offer_id: str
    code_id: str
    consumer_id: str | None
    price_paid: int = 0


@dataclass(frozen=True, kw_only=True)
class CodeRedeemed(Event):
    """A code was used at a store's counter (a single code, or one of a bulk batch)."""

    name = "code.redeemed"
    merchant_id: str
    store_id: str
    terminal_id: str | None
    offer_id: str
    redemption_id: str
    code_id: str | None
    batch_id: str | None
    consumer_id: str | None
    bill_amount: int | None
    discount_amount: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class RedemptionUndone(Event):
    """The counter took a redemption back within the grace period."""

    name = "redemption.undone"
    merchant_id: str
    store_id: str
    offer_id: str
    redemption_id: str
    code_id: str | None


@dataclass(frozen=True, kw_only=True)
class VoucherRefunded(Event):
    """An unused paid voucher was refunded out of escrow (on request, or at expiry)."""

    name = "voucher.refunded"
    merchant_id: str
    offer_id: str
    code_id: str
    consumer_id: str | None
    amount: int
    currency: str
    reason: str
