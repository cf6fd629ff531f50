"""Asking the provider, after the commit: the handlers of the `…Requested` events.

They get no session (`wiring.after_commit`): a provider is a network call, which must never
hold row locks or SQLite's writer lock, and an intent that rolled back never reaches it.
They run at least once; the intent's or operation's id is the provider's idempotency key,
so a job run again after a crash (or two workers racing) makes one charge, not two. The
answer is not written back here: the provider's signed webhook names the key as its
`reference`, and that is how the platform learns the provider's object id.
"""

from __future__ import annotations

from o2oloop.money import Money
from o2oloop.payments.events import PaymentRequested, PayoutRequested, RefundRequested
from o2oloop.payments.provider import PaymentProvider, ProviderObject


class ProviderRequests:
    """The after-commit handlers, bound to the provider adapter bootstrap chose."""

    def __init__(self, provider: PaymentProvider) -> None:
        self.provider = provider

    def _check(self, name: str) -> None:
        if name != self.provider.name:
            raise LookupError(f"no adapter for payment provider {name!r} in this wiring")

    def charge(self, event: PaymentRequested) -> ProviderObject:
        self._check(event.provider)
        return self.provider.create_charge(
            amount=Money(event.amount, event.currency),
            idempotency_key=event.payment_intent_id,
            metadata=event.metadata,
        )

    def refund(self, event: RefundRequested) -> ProviderObject:
        self._check(event.provider)
        return self.provider.create_refund(
            charge_id=event.charge_id,
            amount=Money(event.amount, event.currency),
            idempotency_key=event.operation_id,
            metadata=event.metadata,
        )

    def payout(self, event: PayoutRequested) -> ProviderObject:
        self._check(event.provider)
        return self.provider.create_payout(
            amount=Money(event.amount, event.currency),
            destination=event.destination,
            idempotency_key=event.operation_id,
            metadata=event.metadata,
        )
