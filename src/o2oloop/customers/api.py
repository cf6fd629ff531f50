"""Consumer routes: sign up, who am I."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.customers import schemas, service
from o2oloop.http import DB, IDEMPOTENT, Caller, problems

router = APIRouter(prefix="/v1/consumers", tags=["consumers"], responses=problems(401, 403, 422))


@router.post("", status_code=201, dependencies=IDEMPOTENT)
def sign_up(data: schemas.ConsumerCreate, db: DB) -> schemas.ConsumerCreated:
    with db.transaction() as session:
        consumer, token = service.sign_up(session, display_name=data.display_name)
        return schemas.ConsumerCreated(
            consumer=schemas.ConsumerRead.model_validate(consumer), token=token
        )


@router.get("/me")
def me(db: DB, caller: Caller) -> schemas.ConsumerRead:
    with db.transaction() as session:
        return schemas.ConsumerRead.model_validate(service.get_self(session, principal=caller))
