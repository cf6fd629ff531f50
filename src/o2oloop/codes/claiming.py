"""A consumer takes a code: claiming a free coupon, or reserving a bought voucher's unit.

Stock and the per-customer limit hold under any concurrency because both are taken by
conditional UPDATEs; the rules themselves are decided in `offers.rules`.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import Principal, require_consumer
from o2oloop.codes.counter import is_new_customer
from o2oloop.codes.events import CodeClaimed
from o2oloop.codes.keys import Keys
from o2oloop.codes.models import Code, CodeState, OfferClaim
from o2oloop.codes.refusals import broken_rules
from o2oloop.db import new_id
from o2oloop.errors import Conflict, NotFound
from o2oloop.merchants.models import Merchant
from o2oloop.offers.models import Offer, OfferKind, OfferState
from o2oloop.offers.rules import (
    PER_CUSTOMER_LIMIT,
    STOCK,
    RedemptionContext,
    Violation,
    code_expires_at,
    evaluate_claim,
)
from o2oloop.offers.service import rules_of
from o2oloop.prepared import dialect_insert


def claim(session: Session, *, principal: Principal, offer_id: str, keys: Keys) -> Code:
    """A consumer claims one code of a free offer."""
    consumer_id = require_consumer(principal, "claiming needs a consumer key")
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is not OfferState.PUBLISHED:
        raise NotFound("no published offer with this id")
    if offer.kind is not OfferKind.COUPON:
        raise Conflict(f"a {offer.kind.value} is bought, not claimed (POST /buy)")
    reserve(session, offer=offer, consumer_id=consumer_id)
    return new_code(session, offer=offer, consumer_id=consumer_id, keys=keys, price_paid=0)


def reserve(session: Session, *, offer: Offer, consumer_id: str) -> None:
    """Take one unit of stock and one of the consumer's limit, or refuse with every reason."""
    merchant = session.get(Merchant, offer.merchant_id)
    assert merchant is not None
    already = session.scalar(
        select(OfferClaim.claimed).where(
            OfferClaim.offer_id == offer.id, OfferClaim.consumer_id == consumer_id
        )
    )
    ctx = RedemptionContext(
        at=clock.now(),
        store_id="",
        store_timezone=merchant.timezone,
        customer_redemptions=already or 0,
        issued_count=offer.issued_count,
        customer_is_new=is_new_customer(session, merchant.id, consumer_id),
        currency=offer.currency,
    )
    violations = evaluate_claim(rules_of(offer), ctx)
    if violations:
        raise broken_rules(violations)
    _take_limit(session, offer, consumer_id)
    _take_stock(session, offer)


def _take_limit(session: Session, offer: Offer, consumer_id: str) -> None:
    insert_into = dialect_insert(session.get_bind().dialect.name)
    session.execute(
        insert_into(OfferClaim)
        .values(offer_id=offer.id, consumer_id=consumer_id, claimed=0)
        .on_conflict_do_nothing()
    )
    limit = offer.per_customer_limit
    bumped = session.execute(
        update(OfferClaim)
        .where(OfferClaim.offer_id == offer.id, OfferClaim.consumer_id == consumer_id)
        .where(OfferClaim.claimed < limit if limit is not None else True)
        .values(claimed=OfferClaim.claimed + 1)
    )
    if bumped.rowcount != 1:
        raise broken_rules(
            [Violation(PER_CUSTOMER_LIMIT, "you have claimed this offer as often as allowed")]
        )


def _take_stock(session: Session, offer: Offer) -> None:
    taken = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.state == OfferState.PUBLISHED)
        .where(Offer.issued_count < offer.total_stock if offer.total_stock is not None else True)
        .values(issued_count=Offer.issued_count + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise broken_rules([Violation(STOCK, "this offer is sold out")])


def new_code(
    session: Session, *, offer: Offer, consumer_id: str | None, keys: Keys, price_paid: int
) -> Code:
    """A consumer's own code of an offer, valid until the offer's rules say it expires."""
    now = clock.now()
    code_id = new_id("cod")
    code = Code(
        id=code_id,
        merchant_id=offer.merchant_id,
        offer_id=offer.id,
        consumer_id=consumer_id,
        digest=keys.digest(keys.serial_for(code_id)),
        state=CodeState.ACTIVE,
        claimed_at=now,
        expires_at=code_expires_at(rules_of(offer), now),
        price_paid=price_paid,
    )
    session.add(code)
    session.flush()
    events.record(
        session,
        CodeClaimed(
            merchant_id=offer.merchant_id,
            offer_id=offer.id,
            code_id=code_id,
            consumer_id=consumer_id,
            price_paid=price_paid,
        ),
    )
    return code
