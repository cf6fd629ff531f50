"""Prepaid vouchers and set packages: bought through the payment provider, held in escrow.

Buying reserves stock and the consumer's limit at once; the code exists only after the
provider confirms the charge (`issue_paid_voucher`, a handler of `PaymentSucceeded` wired in
bootstrap). A failed charge gives both back (`release_unpaid_voucher`) and leaves nothing
owed. Redemption releases the price from escrow to the merchant, less
commission; undo reverses exactly that posting. An unused voucher is refunded on request
or automatically at expiry, always out of escrow, so settled money is never touched.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import Principal, require_consumer
from o2oloop.codes import service as codes
from o2oloop.codes.events import VoucherRefunded
from o2oloop.codes.models import Code, CodeState, OfferClaim
from o2oloop.errors import Conflict, NotFound
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerTransaction, TransactionKind
from o2oloop.money import Money
from o2oloop.offers.models import Offer, OfferKind, OfferState
from o2oloop.payments import service as payments
from o2oloop.payments.events import PaymentFailed, PaymentSucceeded
from o2oloop.payments.models import PaymentIntent

PAID_KINDS = (OfferKind.VOUCHER, OfferKind.MEMBERSHIP)


def buy(
    session: Session, *, principal: Principal, offer_id: str, behaviour: str | None = None
) -> PaymentIntent:
    """Start buying a voucher: stock and the per-customer limit are taken now, atomically."""
    require_consumer(principal, "buying needs a consumer key")
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is not OfferState.PUBLISHED:
        raise NotFound("no published offer with this id")
    if offer.kind not in PAID_KINDS or not offer.price:
        raise Conflict(f"a {offer.kind.value} is claimed, not bought")
    codes.reserve(session, offer=offer, consumer_id=principal.consumer_id)
    return payments.create_payment_intent(
        session,
        consumer_id=principal.consumer_id,
        merchant_id=offer.merchant_id,
        amount=Money(offer.price, offer.currency),
        purpose=payments.VOUCHER,
        reference=offer.id,
        details={"offer_id": offer.id},
        behaviour=behaviour,
    )


def issue_paid_voucher(session: Session, event: PaymentSucceeded, *, keys: codes.Keys) -> None:
    """The provider confirmed the charge: the money is in escrow, so the code is issued.

    A voucher payment started outside `buy` names no offer; its money stays in escrow, where
    reconciliation and refunds see it, and no code is invented for it. Issued once per
    payment: a second run finds the code.
    """
    if event.purpose != payments.VOUCHER:
        return
    offer_id = event.details.get("offer_id")
    offer = session.get(Offer, offer_id) if offer_id else None
    if offer is None:
        return
    issued = select(Code.id).where(Code.payment_intent_id == event.payment_intent_id)
    if session.scalar(issued) is not None:
        return
    code = codes.new_code(
        session,
        offer=offer,
        consumer_id=event.consumer_id,
        keys=keys,
        price_paid=event.amount,
    )
    code.payment_intent_id = event.payment_intent_id
    session.flush()


def release_unpaid_voucher(session: Session, event: PaymentFailed) -> None:
    """No money, no code: give back the stock and the consumer's claim."""
    offer_id = event.details.get("offer_id")
    if event.purpose != payments.VOUCHER or offer_id is None:
        return
    session.execute(
        update(Offer)
        .where(Offer.id == offer_id, Offer.issued_count > 0)
        .values(issued_count=Offer.issued_count - 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OfferClaim)
        .where(
            OfferClaim.offer_id == offer_id,
            OfferClaim.consumer_id == event.consumer_id,
            OfferClaim.claimed > 0,
        )
        .values(claimed=OfferClaim.claimed - 1)
        .execution_options(synchronize_session=False)
    )


def refund(session: Session, *, code: Code, reason: str) -> Code:
    """Refund an unused paid voucher. The state change is a conditional UPDATE, so a refund
    racing a redemption of the same code lets exactly one of them through."""
    if not code.price_paid or code.payment_intent_id is None:
        raise Conflict("only a bought voucher can be refunded")
    taken = session.execute(
        update(Code)
        .where(Code.id == code.id, Code.state == CodeState.ACTIVE)
        .values(state=CodeState.REFUNDED)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Conflict("this voucher is no longer unused")
    offer = session.get(Offer, code.offer_id)
    assert offer is not None
    refund_price(
        session,
        merchant_id=code.merchant_id,
        price=Money(code.price_paid, offer.currency),
        payment_intent_id=code.payment_intent_id,
        reference=f"{code.id}:{reason}",
    )
    events.record(
        session,
        VoucherRefunded(
            merchant_id=code.merchant_id,
            offer_id=code.offer_id,
            code_id=code.id,
            consumer_id=code.consumer_id,
            amount=code.price_paid,
            currency=offer.currency,
            reason=reason,
        ),
    )
    session.refresh(code)
    return code


def refund_price(
    session: Session, *, merchant_id: str, price: Money, payment_intent_id: str, reference: str
) -> LedgerTransaction:
    """A voucher's price leaves escrow and is refunded through the provider.

    The money waits in `refunds_in_transit` until the provider confirms the refund (then it
    leaves through provider clearing) or refuses it (then it returns to voucher escrow).
    Because it comes out of escrow, never out of merchant payable, a refund can never touch
    money that was already settled.
    """
    escrow = ledger.merchant_account(
        session, AccountKind.VOUCHER_ESCROW, merchant_id, price.currency
    )
    return payments.refund_intent(
        session,
        payment_intent_id=payment_intent_id,
        amount=price,
        source=escrow,
        kind=TransactionKind.VOUCHER_REFUND,
        reference=reference,
    )


def refund_own(session: Session, *, principal: Principal, code_id: str) -> Code:
    """A consumer refunds an unused voucher of theirs, any time before use."""
    code = codes.own_code(session, principal=principal, code_id=code_id)
    return refund(session, code=code, reason="consumer")


def expired_unused(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of paid vouchers past their expiry and still unused: due for automatic refund."""
    moment = now or clock.now()
    return list(
        session.scalars(
            select(Code.id)
            .where(
                Code.state == CodeState.ACTIVE,
                Code.price_paid > 0,
                Code.expires_at.is_not(None),
                Code.expires_at <= moment,
            )
            .order_by(Code.id)
            .limit(limit)
        )
    )


def refund_expired(session: Session, *, code_id: str) -> bool:
    """Refund one expired voucher; False if it was used or refunded meanwhile."""
    code = session.get(Code, code_id)
    if code is None:
        raise NotFound("no such code")
    try:
        with session.begin_nested():  # a refused refund leaves the code exactly as it was
            refund(session, code=code, reason="expired")
    except Conflict:
        return False
    return True
