"""Routes for POS payments (terminal keys) and merchants' visit history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.pagination import Page, page_of
from o2oloop.validation import Instant
from o2oloop.visits import schemas, service

router = APIRouter(prefix="/v1", tags=["visits"], responses=problems(401, 403, 404, 409, 422))

Since = Annotated[Instant | None, Query(description="Visits at or after this time")]
Until = Annotated[Instant | None, Query(description="Visits before this time")]


def outcome_response(outcome: service.PaymentOutcome) -> schemas.PaymentRecorded:
    membership = outcome.membership
    member = None
    if membership is not None:
        member = schemas.PaymentMember(
            id=membership.id,
            new_member=outcome.new_member,
            marketing_consent=membership.marketing_consent,
            member_card=membership.member_card,
            visit_count=membership.visit_count,
        )
    return schemas.PaymentRecorded(
        visit=schemas.VisitRead.model_validate(outcome.visit), member=member
    )


@router.post("/terminal/payments", status_code=201, dependencies=IDEMPOTENT)
def record_payment(
    data: schemas.PaymentCreate, request: Request, db: DB, caller: Caller
) -> schemas.PaymentRecorded:
    """A terminal reports a payment at its store; a phone number enrolls the payer as a member."""
    secret_key = request.app.state.settings.secret_key
    with db.transaction() as session:
        outcome = service.record_payment(
            session, principal=caller, data=data, secret_key=secret_key
        )
        return outcome_response(outcome)


@router.get("/merchants/{merchant_id}/visits")
def list_visits(
    merchant_id: str,
    session: Reading,
    caller: Caller,
    store_id: Annotated[str | None, Query(max_length=40)] = None,
    member_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.VisitRead]:
    rows, next_cursor = service.list_visits(
        session,
        principal=caller,
        merchant_id=merchant_id,
        store_id=store_id,
        member_id=member_id,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return page_of(schemas.VisitRead, rows, next_cursor)
