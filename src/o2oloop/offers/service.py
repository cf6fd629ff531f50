"""Offer use cases: create, change, move through draft → published → paused → ended."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant_admin,
    require_merchant_staff,
)
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.models import Merchant, Store
from o2oloop.offers import schemas
from o2oloop.offers.models import DiscountKind, Offer, OfferKind, OfferState
from o2oloop.offers.rules import OfferRules, Reward, TimeWindow
from o2oloop.pagination import paginate

# Which states each lifecycle action may start from.
TRANSITIONS: dict[str, tuple[frozenset[OfferState], OfferState]] = {
    "publish": (frozenset({OfferState.DRAFT, OfferState.PAUSED}), OfferState.PUBLISHED),
    "pause": (frozenset({OfferState.PUBLISHED}), OfferState.PAUSED),
    "end": (
        frozenset({OfferState.DRAFT, OfferState.PUBLISHED, OfferState.PAUSED}),
        OfferState.ENDED,
    ),
}


def rules_of(offer: Offer | Row[Any]) -> OfferRules:
    """The pure rule object of a stored offer (the mapped object or a row of `offers`)."""

    def hhmm(value: str) -> time:
        return time(int(value[:2]), int(value[3:]))

    return OfferRules(
        valid_from=offer.valid_from,
        valid_until=offer.valid_until,
        valid_days_after_claim=offer.valid_days_after_claim,
        weekdays=frozenset(offer.weekdays) if offer.weekdays is not None else None,
        time_windows=tuple(
            TimeWindow(hhmm(w["start"]), hhmm(w["end"])) for w in offer.time_windows
        ),
        store_ids=frozenset(offer.store_ids) if offer.store_ids is not None else None,
        per_customer_limit=offer.per_customer_limit,
        total_stock=offer.total_stock,
        new_customers_only=offer.new_customers_only,
        min_spend=offer.min_spend,
        bill_required=offer.discount_kind is DiscountKind.PERCENT_OFF,
    )


def reward_of(offer: Offer | Row[Any]) -> Reward:
    """What redeeming a stored offer gives (the mapped object or a row of `offers`)."""
    if offer.kind is OfferKind.VOUCHER:
        return Reward(set_name=offer.includes or offer.title, set_worth=offer.face_value or 0)
    if offer.kind is not OfferKind.COUPON or offer.discount_kind is None:
        return Reward()
    return Reward(
        discount_kind=offer.discount_kind,
        amount_off=offer.amount_off,
        percent_off_bps=offer.percent_off_bps,
        cap=offer.discount_cap,
    )


def _check_new_offer(
    session: Session, principal: Principal, merchant_id: str, data: schemas.OfferCreate
) -> Merchant:
    require_merchant_admin(principal, merchant_id)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    if not merchant.active:
        raise Conflict("this merchant is deactivated")
    if data.valid_from and data.valid_until and data.valid_until <= data.valid_from:
        # JSON Schema cannot compare two fields, so this one is refused here, not by it.
        raise InvalidInput("valid_until must be after valid_from: the offer would never be valid")
    if data.store_ids is not None:
        owned = set(
            session.scalars(
                select(Store.id).where(
                    Store.merchant_id == merchant_id, Store.id.in_(data.store_ids)
                )
            )
        )
        unknown = sorted(set(data.store_ids) - owned)
        if unknown:
            raise NotFound(
                f"store_ids: not stores of this merchant: {', '.join(unknown)}", field="store_ids"
            )
    return merchant


def _offer_values(data: schemas.OfferCreate) -> dict[str, Any]:
    values = data.model_dump(mode="python")
    values["time_windows"] = [w.model_dump() for w in data.time_windows]
    values["topup_tiers"] = [t.model_dump() for t in data.topup_tiers]
    return values


def create_offer(
    session: Session, *, principal: Principal, merchant_id: str, data: schemas.OfferCreate
) -> Offer:
    merchant = _check_new_offer(session, principal, merchant_id, data)
    now = clock.now()
    values = _offer_values(data)
    offer = Offer(
        id=new_id("ofr"),
        merchant_id=merchant_id,
        state=OfferState.DRAFT,
        currency=merchant.currency,
        issued_count=0,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(offer)
    session.flush()
    return offer


def revise_draft(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    offer_id: str,
    data: schemas.OfferCreate,
) -> Offer:
    """Every field and rule of a draft, replaced: nobody holds a code of it yet."""
    _check_new_offer(session, principal, merchant_id, data)
    offer = get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    if offer.state is not OfferState.DRAFT:
        raise Conflict("only a draft can change its kind, benefit and rules")
    for name, value in _offer_values(data).items():
        setattr(offer, name, value)
    offer.updated_at = clock.now()
    session.flush()
    return offer


def get_offer(session: Session, *, principal: Principal, merchant_id: str, offer_id: str) -> Offer:
    require_merchant_staff(principal, merchant_id)
    offer = get_owned(session, Offer, offer_id, merchant_id=merchant_id, what="offer")
    return offer


def list_offers(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    state: OfferState | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Offer], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(Offer).where(Offer.merchant_id == merchant_id)
    if state is not None:
        query = query.where(Offer.state == state)
    return paginate(session, query, Offer.id, cursor=cursor, limit=limit)


def update_offer(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    offer_id: str,
    data: schemas.OfferUpdate,
) -> Offer:
    require_merchant_admin(principal, merchant_id)
    offer = get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    if offer.state is OfferState.ENDED:
        raise Conflict("an ended offer cannot change")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "total_stock" in changes and changes["total_stock"] < offer.issued_count:
        raise Conflict(f"total_stock cannot go below the {offer.issued_count} codes already issued")
    if (
        "valid_until" in changes
        and offer.valid_from is not None
        and changes["valid_until"] <= offer.valid_from
    ):
        raise InvalidInput("valid_until must be after valid_from")
    for field, value in changes.items():
        setattr(offer, field, value)
    offer.updated_at = clock.now()
    session.flush()
    return offer


def transition(
    session: Session, *, principal: Principal, merchant_id: str, offer_id: str, action: str
) -> Offer:
    require_merchant_admin(principal, merchant_id)
    offer = get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    sources, target = TRANSITIONS[action]
    if offer.state not in sources:
        raise Conflict(f"cannot {action} an offer that is {offer.state.value}")
    offer.state = target
    offer.updated_at = clock.now()
    session.flush()
    return offer


def list_published(
    session: Session, *, merchant_id: str | None, cursor: str | None, limit: int
) -> tuple[list[Offer], str | None]:
    """What consumers can browse: published offers of active merchants, still valid."""
    now = clock.now()
    query = (
        select(Offer)
        .join(Merchant, Merchant.id == Offer.merchant_id)
        .where(
            Offer.state == OfferState.PUBLISHED,
            Merchant.active.is_(True),
            (Offer.valid_until.is_(None)) | (Offer.valid_until > now),
        )
    )
    if merchant_id is not None:
        query = query.where(Offer.merchant_id == merchant_id)
    return paginate(session, query, Offer.id, cursor=cursor, limit=limit)


def get_published(session: Session, *, offer_id: str) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is not OfferState.PUBLISHED:
        raise NotFound("no published offer with this id")
    return offer
