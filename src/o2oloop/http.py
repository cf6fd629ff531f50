"""HTTP plumbing shared by every domain's routes: database, caller, headers, errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from o2oloop.auth import service as keys
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import PROBLEM_MEDIA_TYPE

_bearer = HTTPBearer(auto_error=False, description="An o2oloop API key")


def get_db(request: Request) -> Database:
    return request.app.state.db


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    db: Database = request.app.state.db
    token = credentials.credentials if credentials else None
    with db.reading() as session:
        return keys.authenticate(session, token)


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="Retries with the same key replay the first response for 24 hours",
        ),
    ] = None,
) -> str | None:
    return key


DB = Annotated[Database, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]
Cursor = Annotated[str | None, Query(max_length=40, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=200)]
IDEMPOTENT = [Depends(idempotency_key)]

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers a route can give."""
    return {
        status: {
            "description": "Problem details (RFC 9457)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }
