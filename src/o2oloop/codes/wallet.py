"""The codes a consumer holds, as the consumer and the merchant's staff see them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop.auth.principal import Principal, require_consumer, require_merchant_staff
from o2oloop.codes.models import Code, CodeState
from o2oloop.errors import NotFound
from o2oloop.offers.models import Offer
from o2oloop.offers.rules import code_expired
from o2oloop.pagination import paginate


def wallet_state(code: Code, now: datetime) -> str:
    """What the consumer sees: active, used, expired or refunded."""
    if code.state is CodeState.REDEEMED:
        return "used"
    if code.state is CodeState.ACTIVE and code_expired(code.expires_at, now):
        return "expired"
    return code.state.value


def wallet(
    session: Session, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[tuple[Code, Offer]], str | None]:
    """The consumer's own codes with their offers, a page at a time."""
    consumer_id = require_consumer(principal, "the wallet needs a consumer key")
    codes, next_cursor = paginate(
        session,
        select(Code).where(Code.consumer_id == consumer_id),
        Code.id,
        cursor=cursor,
        limit=limit,
    )
    offers = {
        o.id: o
        for o in session.scalars(select(Offer).where(Offer.id.in_({c.offer_id for c in codes})))
    }
    return [(c, offers[c.offer_id]) for c in codes], next_cursor


def own_code(session: Session, *, principal: Principal, code_id: str) -> Code:
    """One code of the caller's wallet; anyone else's is not found."""
    consumer_id = require_consumer(principal)
    code = session.get(Code, code_id)
    if code is None or code.consumer_id != consumer_id:
        raise NotFound("no code with this id in your wallet")
    return code


def member_codes(
    session: Session, *, principal: Principal, merchant_id: str, consumer_id: str, limit: int = 50
) -> list[tuple[Code, Offer]]:
    """A member's codes of this merchant's offers, newest first (never the code itself)."""
    require_merchant_staff(principal, merchant_id)
    return [
        (code, offer)
        for code, offer in session.execute(
            select(Code, Offer)
            .join(Offer, Offer.id == Code.offer_id)
            .where(Code.merchant_id == merchant_id, Code.consumer_id == consumer_id)
            .order_by(Code.claimed_at.desc())
            .limit(limit)
        )
    ]
