"""HTTP plumbing shared by every domain's routes: database, caller, headers, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from o2oloop.auth import service as keys
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import PROBLEM_MEDIA_TYPE, ProblemError
from o2oloop.pagination import CURSOR_PATTERN

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, as the middleware checks
_bearer = HTTPBearer(auto_error=False, description="An o2oloop API key")


# Dependencies that do no I/O are `async def`: FastAPI would run a plain `def` in the thread
# pool, a hand-off per dependency per request.


async def get_db(request: Request) -> Database:
    return request.app.state.db


def read_session(request: Request) -> Iterator[Session]:
    """A read-only unit of work for a route that only reads: on SQLite it takes no writer
    lock, so it never waits for a writer (write-ahead log readers)."""
    with request.app.state.db.reading() as session:
        yield session


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The presented API key, unchecked: for routes that check it inside their own work."""
    return credentials.credentials if credentials else None


def current_principal(
    request: Request, token: Annotated[str | None, Depends(bearer_token)]
) -> Principal:
    """The caller; for a path naming a merchant, also that the merchant exists."""
    db: Database = request.app.state.db
    with db.lean(write=False) as transaction:
        principal = keys.authenticate(transaction, token)
        merchant_id = request.path_params.get("merchant_id")
        if merchant_id is not None:
            keys.require_known_merchant(transaction, principal, merchant_id)
        return principal


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retries with the same key replay the first response for 24 hours",
        ),
    ] = None,
) -> str | None:
    return key


DB = Annotated[Database, Depends(get_db)]
# A route that only reads asks for `Reading`; one that writes opens `db.transaction()`.
Reading = Annotated[Session, Depends(read_session, scope="function")]
Caller = Annotated[Principal, Depends(current_principal)]
Token = Annotated[str | None, Depends(bearer_token)]
Cursor = Annotated[
    str | None,
    Query(max_length=40, pattern=CURSOR_PATTERN, description="next_cursor of the last page"),
]
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


def problem_response(error: ProblemError, instance: str) -> JSONResponse:
    """The one rendering of a domain error, with Retry-After when the error says when."""
    retry_after = error.extensions.get("retry_after_seconds")
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse(
        error.to_problem(instance),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )
