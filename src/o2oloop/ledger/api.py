"""Routes for stored value, balances, settlements and reconciliation."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from o2oloop import clock
from o2oloop.auth.principal import require_platform
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.ledger import reconciliation, schemas, settlement, stored_value
from o2oloop.ledger import service as ledger
from o2oloop.pagination import Page, page_of
from o2oloop.payments.schemas import PaymentIntentRead

router = APIRouter(prefix="/v1", tags=["money"], responses=problems(401, 403, 404, 409, 422))


# ---- stored value ------------------------------------------------------------------------


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


# ---- balances and settlements ------------------------------------------------------------


@router.get("/merchants/{merchant_id}/balances")
def merchant_balances(
    merchant_id: str, session: Reading, caller: Caller
) -> schemas.MerchantBalances:
    return schemas.MerchantBalances(
        **ledger.merchant_summary(session, principal=caller, merchant_id=merchant_id)
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


# ---- reconciliation ----------------------------------------------------------------------


@router.get("/ledger/reconciliation")
def reconciliation_report(session: Reading, caller: Caller) -> schemas.ReconciliationReport:
    """Platform admin: every difference between the books, the provider and settlements."""
    require_platform(caller)
    differences = reconciliation.report(session)
    return schemas.ReconciliationReport(
        generated_at=clock.now(),
        ok=not differences,
        differences=[schemas.DifferenceRead(**d.as_dict()) for d in differences],
    )
