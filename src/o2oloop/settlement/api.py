"""Routes for a merchant's balances and its settlements with their statements."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.pagination import Page, page_of
from o2oloop.settlement import schemas
from o2oloop.settlement import service as settlement

router = APIRouter(prefix="/v1", tags=["money"], responses=problems(401, 403, 404, 409, 422))


@router.get("/merchants/{merchant_id}/balances")
def merchant_balances(
    merchant_id: str, session: Reading, caller: Caller
) -> schemas.MerchantBalances:
    return schemas.MerchantBalances(
        **settlement.merchant_summary(session, principal=caller, merchant_id=merchant_id)
    )


@router.post("/merchants/{merchant_id}/settlements", dependencies=IDEMPOTENT)
def run_settlement(
    merchant_id: str, data: schemas.SettlementCreate, db: DB, caller: Caller
) -> schemas.SettlementRead | None:
    """Platform admin: settle one merchant up to a cutoff (null when nothing is due)."""
    with db.transaction() as session:
        batch = settlement.run_for_merchant(
            session, principal=caller, merchant_id=merchant_id, cutoff=data.cutoff
        )
        return schemas.SettlementRead.model_validate(batch) if batch else None


@router.get("/merchants/{merchant_id}/settlements")
def list_settlements(
    merchant_id: str, session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.SettlementRead]:
    rows, next_cursor = settlement.list_batches(
        session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
    )
    return page_of(schemas.SettlementRead, rows, next_cursor)


@router.get("/merchants/{merchant_id}/settlements/{settlement_id}")
def get_settlement(
    merchant_id: str, settlement_id: str, session: Reading, caller: Caller
) -> schemas.Statement:
    """The batch and its statement: every redemption, commission, reversal, refund, spend."""
    batch = settlement.get_batch(
        session, principal=caller, merchant_id=merchant_id, settlement_id=settlement_id
    )
    return schemas.Statement(
        settlement=schemas.SettlementRead.model_validate(batch),
        lines=[
            schemas.StatementLineRead(**line.__dict__)
            for line in settlement.statement_lines(session, batch)
        ],
    )


@router.get(
    "/merchants/{merchant_id}/settlements/{settlement_id}/statement.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_settlement_csv(
    merchant_id: str, settlement_id: str, session: Reading, caller: Caller
) -> Response:
    batch = settlement.get_batch(
        session, principal=caller, merchant_id=merchant_id, settlement_id=settlement_id
    )
    body = settlement.statement_csv(session, batch)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{batch.id}.csv"'},
    )
