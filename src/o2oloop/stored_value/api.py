"""Routes for stored value: the merchant's program, top-ups, spends at the terminal, closure."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.pagination import Page
from o2oloop.payments.schemas import PaymentIntentRead
from o2oloop.stored_value import schemas
from o2oloop.stored_value import service as stored_value

router = APIRouter(prefix="/v1", tags=["money"], responses=problems(401, 403, 404, 409, 422))


@router.put("/merchants/{merchant_id}/stored-value/program")
def set_stored_value_program(
    merchant_id: str, data: schemas.StoredValueProgramUpdate, db: DB, caller: Caller
) -> schemas.StoredValueProgramRead:
    """Top-up tiers with a merchant-funded bonus, e.g. pay 500.00 and get 550.00."""
    with db.transaction() as session:
        program = stored_value.set_program(
            session,
            principal=caller,
            merchant_id=merchant_id,
            tiers=[t.model_dump() for t in data.tiers],
            active=data.active,
        )
        return schemas.StoredValueProgramRead.model_validate(program)


@router.get("/merchants/{merchant_id}/stored-value/program")
def get_stored_value_program(
    merchant_id: str, session: Reading, caller: Caller
) -> schemas.StoredValueProgramRead:
    program = stored_value.get_program(session, principal=caller, merchant_id=merchant_id)
    return schemas.StoredValueProgramRead.model_validate(program)


@router.get("/merchants/{merchant_id}/stored-value/balances")
def list_stored_value_balances(
    merchant_id: str, session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.StoredValueBalance]:
    rows, next_cursor = stored_value.merchant_balances(
        session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
    )
    return Page(
        data=[
            schemas.StoredValueBalance(
                merchant_id=merchant_id,
                consumer_id=row.consumer_id or "",
                balance=row.balance,
                currency=row.currency,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


@router.post("/merchants/{merchant_id}/stored-value/refund-all", dependencies=IDEMPOTENT)
def refund_all_stored_value(merchant_id: str, db: DB, caller: Caller) -> schemas.ClosureRefunds:
    """Platform admin: refund every remaining stored-value balance of a (closing) merchant."""
    with db.transaction() as session:
        operations = stored_value.refund_all(session, principal=caller, merchant_id=merchant_id)
        return schemas.ClosureRefunds(
            merchant_id=merchant_id,
            refunds=len(operations),
            total=sum(op.amount for op in operations),
            currency=operations[0].currency if operations else None,
            operation_ids=[op.id for op in operations],
        )


@router.post("/consumers/me/stored-value/top-ups", status_code=201, dependencies=IDEMPOTENT)
def top_up_stored_value(
    data: schemas.StoredValueTopUpCreate, db: DB, caller: Caller
) -> PaymentIntentRead:
    """Start a top-up; the balance grows when the payment provider confirms the charge."""
    with db.transaction() as session:
        intent = stored_value.top_up_for_consumer(
            session,
            principal=caller,
            merchant_id=data.merchant_id,
            amount=data.amount,
            behaviour=data.behaviour,
        )
        return PaymentIntentRead.model_validate(intent)


@router.get("/consumers/me/stored-value")
def my_stored_value(session: Reading, caller: Caller) -> list[schemas.StoredValueBalance]:
    return [
        schemas.StoredValueBalance(
            merchant_id=merchant.id,
            merchant_name=merchant.name,
            consumer_id=account.consumer_id or "",
            balance=account.balance,
            currency=account.currency,
        )
        for account, merchant in stored_value.consumer_balances(session, principal=caller)
    ]


@router.post("/terminal/stored-value/spends", status_code=201, dependencies=IDEMPOTENT)
def spend_stored_value(
    data: schemas.StoredValueSpendCreate, db: DB, caller: Caller
) -> schemas.StoredValueSpendRead:
    """Spend part of a consumer's balance at this terminal's merchant; never overdraws."""
    with db.transaction() as session:
        transaction, left = stored_value.spend_at_terminal(
            session, principal=caller, consumer_id=data.consumer_id, amount=data.amount
        )
        return schemas.StoredValueSpendRead(
            transaction_id=transaction.id,
            consumer_id=data.consumer_id,
            merchant_id=caller.merchant_id or "",
            amount=data.amount,
            balance=left.amount,
            currency=left.currency,
        )
