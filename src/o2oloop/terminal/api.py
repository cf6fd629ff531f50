"""Pairing routes for machines: a merchant admin asks for a code, a device redeems it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from o2oloop.http import DB, IDEMPOTENT, Caller, problems
from o2oloop.terminal import pairing, schemas

router = APIRouter(prefix="/v1", tags=["terminal"], responses=problems(401, 403, 404, 409, 422))


def pair_url(request: Request, code: str) -> str:
    return str(request.url_for("terminal_pair_page").include_query_params(code=code))


@router.post(
    "/merchants/{merchant_id}/terminals/{terminal_id}/pairings",
    status_code=201,
    dependencies=IDEMPOTENT,
)
def start_pairing(
    merchant_id: str, terminal_id: str, request: Request, db: DB, caller: Caller
) -> schemas.PairingRead:
    """A ten-minute, single-use code that pairs one device with this terminal."""
    with db.transaction() as session:
        made = pairing.start(
            session,
            principal=caller,
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            secret_key=request.app.state.settings.secret_key,
        )
    return schemas.PairingRead(
        id=made.id,
        terminal_id=made.terminal_id,
        code=made.code,
        pair_url=pair_url(request, made.code),
        expires_at=made.expires_at,
    )


@router.post("/terminal/pair", status_code=201, dependencies=IDEMPOTENT)
def pair(data: schemas.PairCreate, request: Request, db: DB) -> schemas.PairedRead:
    """A device presents its pairing code and receives its terminal key (no key needed)."""
    with db.transaction() as session:
        paired = pairing.complete(
            session,
            code=data.code,
            secret_key=request.app.state.settings.secret_key,
            device=data.device,
        )
        return schemas.PairedRead(
            terminal_id=paired.terminal.id,
            store_id=paired.store.id,
            merchant_id=paired.terminal.merchant_id,
            token=paired.token,
        )
