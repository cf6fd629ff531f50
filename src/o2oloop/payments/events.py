"""What the payment provider confirmed or refused, and what the platform asked it to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class PaymentSucceeded(Event):
    """A charge succeeded; for a voucher its money is in escrow already."""

    name = "payment.succeeded"
    payment_intent_id: str
    merchant_id: str | None
    consumer_id: str
    purpose: str
    amount: int
    currency: str
    reference: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(Event):
    """A charge failed: nothing was taken."""

    name = "payment.failed"
    payment_intent_id: str
    merchant_id: str | None
    consumer_id: str
    purpose: str
    amount: int
    currency: str
    reference: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PayoutFinished(Event):
    """The provider paid money out, or refused to; `kind` is "payout" or "refund"."""

    name = "payout.finished"
    operation_id: str
    kind: str
    merchant_id: str | None
    consumer_id: str | None
    amount: int
    currency: str
    succeeded: bool
    to_merchant: bool


# ---- what the platform asks the provider for, once the ask is committed ------------------
# Each is handled after commit (`payments.requests`), with the intent's or operation's id as
# the provider's idempotency key: a job run again after a crash asks again, and the provider
# answers with the object it already has.


@dataclass(frozen=True, kw_only=True)
class ProviderAsk:
    """What every ask of the provider carries: whose money, which adapter, how much."""

    merchant_id: str | None
    provider: str
    amount: int
    currency: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PaymentRequested(ProviderAsk, Event):
    """A payment intent was committed: charge the consumer for it."""

    name = "payment.requested"
    payment_intent_id: str
    consumer_id: str


@dataclass(frozen=True, kw_only=True)
class RefundRequested(ProviderAsk, Event):
    """A refund was committed (its money waits in transit): ask the provider to pay it."""

    name = "refund.requested"
    operation_id: str
    payment_intent_id: str
    charge_id: str


@dataclass(frozen=True, kw_only=True)
class PayoutRequested(ProviderAsk, Event):
    """A payout was committed (its money waits in transit): ask the provider to pay it."""

    name = "payout.requested"
    operation_id: str
    consumer_id: str | None
    destination: str
