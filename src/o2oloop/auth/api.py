"""Routes for API keys: who am I, a new platform admin key, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.auth import schemas, service
from o2oloop.auth.models import ApiKey, Role
from o2oloop.auth.principal import require_platform
from o2oloop.errors import NotFound
from o2oloop.http import DB, IDEMPOTENT, Caller, Reading, problems

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=problems(401, 403, 404, 422))


@router.get("/me")
def whoami(session: Reading, caller: Caller) -> schemas.KeyRead:
    key = session.get(ApiKey, caller.key_id)
    if key is None:
        raise NotFound("no API key with this id")
    return schemas.KeyRead.model_validate(key)


@router.post("", status_code=201, dependencies=IDEMPOTENT)
def create_platform_key(data: schemas.KeyCreate, db: DB, caller: Caller) -> schemas.KeyCreated:
    with db.transaction() as session:
        require_platform(caller)
        key, token = service.issue_key(session, role=Role.PLATFORM_ADMIN, label=data.label)
        return schemas.KeyCreated(key=schemas.KeyRead.model_validate(key), token=token)


@router.post("/{key_id}/revoke", dependencies=IDEMPOTENT)
def revoke_key(key_id: str, db: DB, caller: Caller) -> schemas.KeyRead:
    with db.transaction() as session:
        key = service.revoke_key(session, principal=caller, key_id=key_id)
        return schemas.KeyRead.model_validate(key)
