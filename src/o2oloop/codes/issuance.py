"""Bulk issuance for brand campaigns: a batch number and a count, not a million rows.

The batch number is unique by constraint and the codes of a batch are a keyed permutation
of (batch_no, index), so no two codes can ever coincide.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, get_owned, require_merchant_admin
from o2oloop.codes import codec
from o2oloop.codes.models import CodeBatch
from o2oloop.db import new_id
from o2oloop.errors import Conflict, RuleViolation
from o2oloop.offers.models import Offer, OfferKind, OfferState
from o2oloop.offers.rules import code_expires_at
from o2oloop.offers.service import get_offer, rules_of

MAX_BATCH = 1_000_000
BATCH_NUMBER_TRIES = 20


def issue_batch(
    session: Session, *, principal: Principal, merchant_id: str, offer_id: str, count: int
) -> CodeBatch:
    """`count` codes of a free coupon in one step, taken from the offer's stock at once."""
    offer = get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    require_merchant_admin(principal, merchant_id)
    if not 1 <= count <= MAX_BATCH:
        raise RuleViolation(f"count must be between 1 and {MAX_BATCH:,}")
    if offer.kind is not OfferKind.COUPON:
        raise Conflict("bulk codes are for free coupons; prepaid offers are bought one by one")
    if offer.state is OfferState.ENDED:
        raise Conflict("this offer has ended")
    _take_stock(session, offer, count)
    batch = _numbered_batch(session, offer, count)
    session.refresh(offer)
    return batch


def _take_stock(session: Session, offer: Offer, count: int) -> None:
    stock = offer.total_stock
    taken = session.execute(
        update(Offer)
        .where(Offer.id == offer.id)
        .where(Offer.issued_count + count <= stock if stock is not None else True)
        .values(issued_count=Offer.issued_count + count)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise RuleViolation("not enough stock left on this offer for that many codes")


def _numbered_batch(session: Session, offer: Offer, count: int) -> CodeBatch:
    """The batch under the next free number; a number a concurrent issuance (of any offer)
    took first is skipped, inside a savepoint, so both issuances succeed."""
    now = clock.now()
    for _ in range(BATCH_NUMBER_TRIES):
        next_no = (session.scalar(select(func.max(CodeBatch.batch_no))) or 0) + 1
        if next_no > codec.MAX_BATCH_NO:
            raise Conflict("the platform has used every batch number")
        batch = CodeBatch(
            id=new_id("bat"),
            merchant_id=offer.merchant_id,
            offer_id=offer.id,
            batch_no=next_no,
            count=count,
            created_at=now,
            expires_at=code_expires_at(rules_of(offer), now),
        )
        try:
            with session.begin_nested():
                session.add(batch)
                session.flush()
        except IntegrityError:
            continue
        return batch
    raise Conflict("every batch number tried was taken by a concurrent issuance; retry")


def get_batch(
    session: Session, *, principal: Principal, merchant_id: str, batch_id: str
) -> CodeBatch:
    require_merchant_admin(principal, merchant_id)
    return get_owned(session, CodeBatch, batch_id, merchant_id=merchant_id, what="code batch")


def list_batches(
    session: Session, *, principal: Principal, merchant_id: str, offer_id: str
) -> list[CodeBatch]:
    """An offer's bulk batches, newest first."""
    get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    return list(
        session.scalars(
            select(CodeBatch)
            .where(CodeBatch.merchant_id == merchant_id, CodeBatch.offer_id == offer_id)
            .order_by(CodeBatch.batch_no.desc())
        )
    )
