"""A consumer's own data: export it all, or have it erased."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.http import DB, IDEMPOTENT, Caller, Reading, problems
from o2oloop.privacy import schemas, service

router = APIRouter(prefix="/v1/consumers", tags=["consumers"], responses=problems(401, 403, 422))


@router.get("/me/export", responses=problems(404))
def export(session: Reading, caller: Caller) -> schemas.ConsumerExport:
    """Everything the platform holds about the calling consumer."""
    return schemas.ConsumerExport.model_validate(service.export_consumer(session, principal=caller))


@router.post("/me/erase", dependencies=IDEMPOTENT, responses=problems(404))
def erase(db: DB, caller: Caller) -> schemas.ErasureReceipt:
    """Erase the consumer's personal data; visits stay only as anonymous facts. Irreversible:
    the consumer's keys stop working."""
    with db.transaction() as session:
        return schemas.ErasureReceipt.model_validate(
            service.erase_consumer(session, principal=caller)
        )
