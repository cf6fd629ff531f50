"""Consumers' inbox and contact details, one-click unsubscribe, SMS delivery reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse

from o2oloop.http import DB, Caller, Cursor, Limit, problems
from o2oloop.notify import dispatch, schemas, service
from o2oloop.notify.sms import report_secret
from o2oloop.pagination import Page, page_of

router = APIRouter(tags=["notify"], responses=problems(400, 401, 403, 404, 422))


@router.get("/v1/consumers/me/inbox")
def inbox(
    db: DB, caller: Caller, unread: bool = False, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.MessageRead]:
    with db.reading() as session:
        rows, next_cursor = service.inbox(
            session, principal=caller, unread=unread, cursor=cursor, limit=limit
        )
        return page_of(schemas.MessageRead, rows, next_cursor)


@router.post("/v1/consumers/me/inbox/{message_id}/read")
def mark_read(message_id: str, db: DB, caller: Caller) -> schemas.MessageRead:
    with db.transaction() as session:
        message = service.mark_read(session, principal=caller, message_id=message_id)
        return schemas.MessageRead.model_validate(message)


@router.put("/v1/consumers/me/contact")
def set_contact(data: schemas.ContactUpdate, db: DB, caller: Caller) -> schemas.ContactRead:
    """Email, timezone (quiet hours are kept in it) and birthday, given by the consumer."""
    with db.transaction() as session:
        consumer = service.set_contact(
            session,
            principal=caller,
            email=data.email,
            timezone=data.timezone,
            birthday=data.birthday,
        )
        return schemas.ContactRead.model_validate(consumer)


_CONFIRM = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Unsubscribe</title>
<body><form method="post"><p>Stop marketing messages from this merchant?</p>
<button type="submit">Unsubscribe</button></form></body></html>"""


@router.get("/v1/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str) -> str:
    """A page with one button: link scanners that follow GETs never unsubscribe anyone."""
    return _CONFIRM


@router.post("/v1/unsubscribe/{token}")
def unsubscribe(token: str, request: Request, db: DB) -> dict[str, object]:
    """One-click unsubscribe (RFC 8058): the consent withdrawal is recorded at once."""
    with db.transaction() as session:
        done = service.unsubscribe(
            session, token=token, secret_key=request.app.state.settings.secret_key
        )
        return {"unsubscribed": True, "merchant_id": done.merchant_id, "already": done.already}


@router.post("/v1/notify/sms/reports", include_in_schema=False)
async def sms_report(
    request: Request,
    db: DB,
    signature: Annotated[str | None, Header(alias="O2O-Signature")] = None,
) -> dict[str, str]:
    payload = await request.body()
    secret = report_secret(request.app.state.settings.secret_key)

    def work() -> str:
        with db.transaction() as session:
            return dispatch.receive_sms_report(
                session, payload=payload, signature=signature, secret=secret
            )

    from starlette.concurrency import run_in_threadpool

    return {"result": await run_in_threadpool(work)}
