"""Routes for claiming, the wallet, bulk batches and redemption at the terminal."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from o2oloop import clock
from o2oloop.auth.principal import require_terminal
from o2oloop.codes import codec, export, qr, schemas, service, till, vouchers
from o2oloop.codes.models import Code
from o2oloop.db import Database
from o2oloop.errors import InvalidInput
from o2oloop.http import (
    DB,
    IDEMPOTENT,
    Caller,
    Cursor,
    Limit,
    Reading,
    Token,
    problems,
)
from o2oloop.offers.models import Offer
from o2oloop.pagination import Page
from o2oloop.payments.schemas import PaymentIntentRead

router = APIRouter(prefix="/v1", tags=["codes"], responses=problems(401, 403, 404, 409, 422, 429))

MAX_PHOTO_BYTES = 8 * 1024 * 1024


def _keys(request: Request) -> service.Keys:
    return service.Keys.from_secret(request.app.state.settings.secret_key)


def _claimed(code: Code, offer: Offer, keys: service.Keys) -> schemas.ClaimedCode:
    text = keys.code_text(code.id)
    return schemas.ClaimedCode(
        id=code.id,
        offer_id=code.offer_id,
        merchant_id=code.merchant_id,
        offer_title=offer.title,
        state=service.wallet_state(code, clock.now()),
        code=text,
        qr_payload=codec.qr_payload(text),
        claimed_at=code.claimed_at,
        expires_at=code.expires_at,
        redeemed_at=code.redeemed_at,
    )


@router.post("/offers/{offer_id}/claim", status_code=201, dependencies=IDEMPOTENT)
def claim(
    offer_id: str,
    request: Request,
    db: DB,
    caller: Caller,
    via: Annotated[
        str | None, Query(max_length=80, description="the tracking or share link's token")
    ] = None,
) -> schemas.ClaimedCode:
    keys = _keys(request)
    with db.transaction() as session:
        code = service.claim(session, principal=caller, offer_id=offer_id, keys=keys)
        for step in request.app.state.wiring.claim_steps:  # wired in bootstrap (channels)
            step(session, code=code, token=via, secret=request.app.state.settings.secret_key)
        offer = session.get(Offer, code.offer_id)
        assert offer is not None
        return _claimed(code, offer, keys)


@router.post("/offers/{offer_id}/buy", status_code=201, dependencies=IDEMPOTENT)
def buy(offer_id: str, data: schemas.BuyCreate, db: DB, caller: Caller) -> PaymentIntentRead:
    """Buy a prepaid voucher: the code appears in the wallet once the payment succeeds."""
    with db.transaction() as session:
        intent = vouchers.buy(
            session, principal=caller, offer_id=offer_id, behaviour=data.sandbox_behaviour
        )
        return PaymentIntentRead.model_validate(intent)


@router.post("/consumers/me/codes/{code_id}/refund", dependencies=IDEMPOTENT)
def refund(code_id: str, request: Request, db: DB, caller: Caller) -> schemas.ClaimedCode:
    """Refund an unused voucher; the money goes back through the payment provider."""
    keys = _keys(request)
    with db.transaction() as session:
        code = vouchers.refund_own(session, principal=caller, code_id=code_id)
        offer = session.get(Offer, code.offer_id)
        assert offer is not None
        return _claimed(code, offer, keys)


@router.get("/consumers/me/codes")
def wallet(
    request: Request, session: Reading, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.ClaimedCode]:
    keys = _keys(request)
    rows, next_cursor = service.wallet(session, principal=caller, cursor=cursor, limit=limit)
    return Page(data=[_claimed(c, o, keys) for c, o in rows], next_cursor=next_cursor)


@router.get(
    "/consumers/me/codes/{code_id}/qr",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def wallet_qr(
    code_id: str,
    request: Request,
    session: Reading,
    caller: Caller,
    format: Annotated[str, Query(pattern="^(png|svg)$")] = "png",
) -> Response:
    keys = _keys(request)
    code = service.own_code(session, principal=caller, code_id=code_id)
    payload = codec.qr_payload(keys.code_text(code.id))
    if format == "svg":
        return Response(qr.qr_svg(payload), media_type="image/svg+xml")
    return Response(qr.qr_png(payload), media_type="image/png")


@router.post(
    "/merchants/{merchant_id}/offers/{offer_id}/batches",
    status_code=201,
    dependencies=IDEMPOTENT,
)
def issue_batch(
    merchant_id: str, offer_id: str, data: schemas.BatchCreate, db: DB, caller: Caller
) -> schemas.BatchRead:
    with db.transaction() as session:
        batch = service.issue_batch(
            session, principal=caller, merchant_id=merchant_id, offer_id=offer_id, count=data.count
        )
        return schemas.BatchRead.model_validate(batch)


@router.get(
    "/merchants/{merchant_id}/batches/{batch_id}/codes.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_batch(
    merchant_id: str, batch_id: str, request: Request, session: Reading, caller: Caller
) -> StreamingResponse:
    keys = _keys(request)
    batch = service.get_batch(session, principal=caller, merchant_id=merchant_id, batch_id=batch_id)

    filename = f"o2oloop-batch-{batch.batch_no}.csv"
    return StreamingResponse(
        export.batch_csv(keys.code, batch.batch_no, batch.count),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(export.batch_csv_size(batch.count)),
        },
    )


# ---- the terminal --------------------------------------------------------------------------


def _attempt(request: Request, token: str | None, code: str, bill: int | None) -> till.Attempt:
    return till.Attempt(
        token=token,
        code=code,
        bill_amount=bill,
        keys=_keys(request),
        rate_per_minute=request.app.state.settings.terminal_attempts_per_minute,
        instance=request.url.path,
    )


async def _redeem(db: Database, attempt: till.Attempt) -> Response:
    answer = await till.redeem_at_till(db, attempt)
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


@router.post(
    "/terminal/redemptions",
    status_code=201,
    dependencies=IDEMPOTENT,
    tags=["terminal"],
    response_model=schemas.RedemptionResult,
)
async def redeem(
    data: schemas.RedemptionCreate, request: Request, db: DB, token: Token
) -> Response:
    """Redeem a typed code or a scanned QR payload at this terminal's store."""
    return await _redeem(db, _attempt(request, token, data.code, data.bill_amount))


@router.post(
    "/terminal/redemptions/scan",
    status_code=201,
    dependencies=IDEMPOTENT,
    tags=["terminal"],
    response_model=schemas.RedemptionResult,
)
async def redeem_photo(
    request: Request,
    db: DB,
    token: Token,
    photo: Annotated[UploadFile, File(description="A photo or screenshot of the QR code")],
    caller: Caller,
    bill_amount: Annotated[int | None, Form(ge=0, le=10**11)] = None,
) -> Response:
    # The key first (401/403), then the costly decoding of a photo nobody may redeem.
    require_terminal(caller)
    data = await photo.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    try:
        texts = await run_in_threadpool(qr.decode_image, data)  # CPU work: off the loop
    except qr.UnreadableImage as unreadable:
        raise InvalidInput(f"photo: {unreadable}") from None
    if not texts:
        raise InvalidInput("no QR code found in the photo; try again closer, or type the code")
    return await _redeem(db, _attempt(request, token, texts[0][:64], bill_amount))


@router.post(
    "/terminal/redemptions/{redemption_id}/undo", dependencies=IDEMPOTENT, tags=["terminal"]
)
def undo(redemption_id: str, request: Request, db: DB, caller: Caller) -> schemas.RedemptionRead:
    grace = timedelta(minutes=request.app.state.settings.redemption_undo_minutes)
    with db.transaction() as session:
        redemption = service.undo(
            session, principal=caller, redemption_id=redemption_id, grace=grace
        )
        return schemas.RedemptionRead.model_validate(redemption)


@router.get("/merchants/{merchant_id}/redemption-attempts")
def attempts(
    merchant_id: str,
    session: Reading,
    caller: Caller,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="next_cursor of the last page")
    ] = None,
    limit: Limit = 50,
) -> schemas.AttemptPage:
    rows = service.list_attempts(
        session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
    )
    data = [schemas.AttemptRead.model_validate(r) for r in rows]
    return schemas.AttemptPage(data=data, next_cursor=data[-1].id if len(data) == limit else None)
