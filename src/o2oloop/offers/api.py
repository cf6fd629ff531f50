"""Offer routes: merchants manage their offers; consumers browse published ones."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.offers import schemas, service
from o2oloop.offers.models import OfferState
from o2oloop.pagination import Page, page_of

router = APIRouter(prefix="/v1", tags=["offers"], responses=problems(401, 403, 404, 409, 422))


def _page(rows: list, next_cursor: str | None) -> Page[schemas.OfferRead]:
    return page_of(schemas.OfferRead, rows, next_cursor)


@router.post("/merchants/{merchant_id}/offers", status_code=201, dependencies=IDEMPOTENT)
def create_offer(
    merchant_id: str, data: schemas.OfferCreate, db: DB, caller: Caller
) -> schemas.OfferRead:
    with db.transaction() as session:
        offer = service.create_offer(session, principal=caller, merchant_id=merchant_id, data=data)
        return schemas.OfferRead.model_validate(offer)


@router.get("/merchants/{merchant_id}/offers")
def list_offers(
    merchant_id: str,
    session: Reading,
    caller: Caller,
    state: OfferState | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.OfferRead]:
    return _page(
        *service.list_offers(
            session,
            principal=caller,
            merchant_id=merchant_id,
            state=state,
            cursor=cursor,
            limit=limit,
        )
    )


@router.get("/merchants/{merchant_id}/offers/{offer_id}")
def get_offer(
    merchant_id: str, offer_id: str, session: Reading, caller: Caller
) -> schemas.OfferRead:
    offer = service.get_offer(session, principal=caller, merchant_id=merchant_id, offer_id=offer_id)
    return schemas.OfferRead.model_validate(offer)


@router.patch("/merchants/{merchant_id}/offers/{offer_id}")
def update_offer(
    merchant_id: str, offer_id: str, data: schemas.OfferUpdate, db: DB, caller: Caller
) -> schemas.OfferRead:
    with db.transaction() as session:
        offer = service.update_offer(
            session, principal=caller, merchant_id=merchant_id, offer_id=offer_id, data=data
        )
        return schemas.OfferRead.model_validate(offer)


def _transition_route(action: str) -> None:
    @router.post(
        f"/merchants/{{merchant_id}}/offers/{{offer_id}}/{action}",
        dependencies=IDEMPOTENT,
        name=f"{action}_offer",
        summary=f"{action.capitalize()} an offer",
    )
    def change_state(merchant_id: str, offer_id: str, db: DB, caller: Caller) -> schemas.OfferRead:
        with db.transaction() as session:
            offer = service.transition(
                session,
                principal=caller,
                merchant_id=merchant_id,
                offer_id=offer_id,
                action=action,
            )
            return schemas.OfferRead.model_validate(offer)


for _action in service.TRANSITIONS:
    _transition_route(_action)


@router.get("/offers")
def browse_offers(
    session: Reading,
    caller: Caller,
    merchant_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.OfferRead]:
    """Published offers any signed-in consumer may claim or buy."""
    return _page(
        *service.list_published(session, merchant_id=merchant_id, cursor=cursor, limit=limit)
    )


@router.get("/offers/{offer_id}")
def published_offer(offer_id: str, session: Reading, caller: Caller) -> schemas.OfferRead:
    return schemas.OfferRead.model_validate(service.get_published(session, offer_id=offer_id))
