"""Pairing a device at the counter (the device's page) and the console's terminals page."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from o2oloop.codes import qr
from o2oloop.errors import ProblemError
from o2oloop.merchants import service as merchants
from o2oloop.terminal import pairing
from o2oloop.terminal.page_kit import DEVICE_COOKIE, DEVICE_DAYS, db, page, settings
from o2oloop.web import framework
from o2oloop.web.framework import CSRF, Form, MerchantPerson, Viewer

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/terminal/pair", name="terminal_pair_page", response_class=HTMLResponse)
def pairpage(request: Request, code: str = "") -> HTMLResponse:
    return page(request, "pair.html", None, {"values": {"code": code[:40]}, "errors": {}})


@router.post("/terminal/pair", dependencies=CSRF, response_class=HTMLResponse)
def pair(request: Request, form: Form) -> Response:
    config = settings(request)
    try:
        with db(request).transaction() as session:
            paired = pairing.complete(
                session,
                code=form.get("code", ""),
                secret_key=config.secret_key,
                device=request.headers.get("user-agent", "")[:80],
            )
    except ProblemError as refused:
        return page(
            request, "pair.html", None,
            {"values": form, "errors": {"code": refused.detail}}, status=422,
        )  # fmt: skip
    response = RedirectResponse("/terminal", status_code=303)
    response.set_cookie(
        DEVICE_COOKIE,
        paired.token,
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=framework.cookie_secure(request),
        path="/terminal",
    )
    return response


# ---- the counter ---------------------------------------------------------------------------


# ---- the console: a merchant admin pairs devices with terminals ----------------------------


def _terminals(request: Request, viewer: Viewer) -> list[tuple[Any, Any, int]]:
    """(terminal, store, live paired devices) of the viewer's merchant."""
    with db(request).reading() as session:
        stores = {
            s.id: s
            for s in merchants.list_stores(
                session, principal=viewer.principal, merchant_id=viewer.merchant_id,
                cursor=None, limit=200,
            )[0]
        }  # fmt: skip
        terminals, _ = merchants.list_terminals(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id,
            store_id=None, cursor=None, limit=200,
        )  # fmt: skip
        rows = [
            (t, stores.get(t.store_id), pairing.live_devices(session, terminal_id=t.id))
            for t in terminals
        ]
        session.expunge_all()
    return rows


def _timezone(request: Request, viewer: Viewer) -> str:
    with db(request).reading() as session:
        return merchants.get_merchant(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id
        ).timezone


@router.get("/console/terminals", response_class=HTMLResponse)
def console_terminals(request: Request, viewer: MerchantPerson) -> HTMLResponse:
    return framework.render(
        request, "terminal/console_terminals.html",
        {"rows": _terminals(request, viewer), "made": None, "qr": ""},
        timezone=_timezone(request, viewer),
    )  # fmt: skip


@router.post(
    "/console/terminals/{terminal_id}/pairing", dependencies=CSRF, response_class=HTMLResponse
)
def console_pairing(request: Request, terminal_id: str, viewer: MerchantPerson) -> HTMLResponse:
    """A pairing code and its QR, shown once: the device at the counter scans or types it."""
    with db(request).transaction() as session:
        made = pairing.start(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id,
            terminal_id=terminal_id, secret_key=settings(request).secret_key,
        )  # fmt: skip
    link = str(request.url_for("terminal_pair_page").include_query_params(code=made.code))
    image = base64.b64encode(qr.qr_svg(link, scale=6)).decode()
    return framework.render(
        request, "terminal/console_terminals.html",
        {"rows": _terminals(request, viewer), "made": made, "link": link,
         "qr": f"data:image/svg+xml;base64,{image}"},
        timezone=_timezone(request, viewer),
    )  # fmt: skip
