"""Consumer routes (sign up, consents) and merchants' member routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from o2oloop.customers import schemas, service
from o2oloop.customers.models import Consumer, Membership, MemberSource
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.pagination import Page

router = APIRouter(prefix="/v1/consumers", tags=["consumers"], responses=problems(401, 403, 422))
members_router = APIRouter(
    prefix="/v1/merchants/{merchant_id}/members",
    tags=["members"],
    responses=problems(401, 403, 404, 409, 422),
)


@router.post("", status_code=201, dependencies=IDEMPOTENT)
def sign_up(data: schemas.ConsumerCreate, db: DB) -> schemas.ConsumerCreated:
    with db.transaction() as session:
        consumer, token = service.sign_up(session, display_name=data.display_name)
        return schemas.ConsumerCreated(
            consumer=schemas.ConsumerRead.model_validate(consumer), token=token
        )


@router.get("/me")
def me(session: Reading, caller: Caller) -> schemas.ConsumerRead:
    return schemas.ConsumerRead.model_validate(service.get_self(session, principal=caller))


def _consent(membership: Membership, merchant_name: str) -> schemas.ConsentRead:
    return schemas.ConsentRead(
        merchant_id=membership.merchant_id,
        merchant_name=merchant_name,
        member_id=membership.id,
        source=membership.source,
        marketing_consent=membership.marketing_consent,
        consent_given_at=membership.consent_given_at,
        consent_withdrawn_at=membership.consent_withdrawn_at,
        consent_recorded_by=membership.consent_recorded_by,
    )


@router.get("/me/consents", responses=problems(404))
def list_consents(session: Reading, caller: Caller) -> list[schemas.ConsentRead]:
    """Every merchant the consumer is a member of, and the marketing consent each holds."""
    rows = service.list_own_memberships(session, principal=caller)
    return [_consent(m, merchant.name) for m, merchant in rows]


@router.post("/me/consents", dependencies=IDEMPOTENT, responses=problems(404))
def set_consent(data: schemas.ConsentUpdate, db: DB, caller: Caller) -> schemas.ConsentRead:
    """Give (true) or withdraw (false) marketing consent for one merchant."""
    with db.transaction() as session:
        membership, merchant = service.set_own_consent(
            session,
            principal=caller,
            merchant_id=data.merchant_id,
            granted=data.marketing_consent,
        )
        return _consent(membership, merchant.name)


# ---- merchants' members --------------------------------------------------------------


def member_read(membership: Membership, consumer: Consumer) -> schemas.MemberRead:
    return schemas.MemberRead(
        id=membership.id,
        merchant_id=membership.merchant_id,
        source=membership.source,
        member_card=membership.member_card,
        marketing_consent=membership.marketing_consent,
        consent_given_at=membership.consent_given_at,
        consent_withdrawn_at=membership.consent_withdrawn_at,
        consent_recorded_by=membership.consent_recorded_by,
        phone=service.visible_phone(membership, consumer),
        first_visit_at=membership.first_visit_at,
        last_visit_at=membership.last_visit_at,
        visit_count=membership.visit_count,
        total_spent=membership.total_spent,
        created_at=membership.created_at,
    )


@members_router.get("")
def list_members(
    merchant_id: str,
    request: Request,
    session: Reading,
    caller: Caller,
    marketing_consent: bool | None = None,
    source: MemberSource | None = None,
    phone: Annotated[str | None, Query(max_length=32, description="Find by phone")] = None,
    member_card: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.MemberRead]:
    secret_key = request.app.state.settings.secret_key
    rows, next_cursor = service.list_members(
        session,
        principal=caller,
        merchant_id=merchant_id,
        secret_key=secret_key,
        marketing_consent=marketing_consent,
        source=source,
        phone=phone,
        member_card=member_card,
        cursor=cursor,
        limit=limit,
    )
    return Page(data=[member_read(m, c) for m, c in rows], next_cursor=next_cursor)


@members_router.post("/{member_id}/consent", dependencies=IDEMPOTENT)
def record_consent(
    merchant_id: str, member_id: str, data: schemas.MemberConsentUpdate, db: DB, caller: Caller
) -> schemas.MemberRead:
    """Staff record the marketing consent a member gave or withdrew at the counter."""
    with db.transaction() as session:
        membership, consumer = service.record_member_consent(
            session,
            principal=caller,
            merchant_id=merchant_id,
            member_id=member_id,
            granted=data.marketing_consent,
        )
        return member_read(membership, consumer)
