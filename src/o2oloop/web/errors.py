"""Errors on pages are pages: a short message in the reader's language, never a trace."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from o2oloop.web import framework, i18n

log = logging.getLogger("o2oloop.web")

_API_PREFIXES = ("/v1/", "/v1", "/openapi.json", "/docs", "/redoc", "/healthz")

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Conflict",
    422: "Check what you entered",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Busy, try again",
}


def is_page(request: Request) -> bool:
    path = request.url.path
    return not any(path == p or path.startswith(p + "/") for p in _API_PREFIXES)


def error_page(request: Request, status: int, detail: str = "") -> HTMLResponse:
    """Rendered without touching the session store when the database itself failed."""
    try:
        viewer = framework.resolve_viewer(request) if status < 500 else None
    except Exception:
        viewer = None
    if viewer is None:
        viewer = framework.Viewer(
            locale=i18n.negotiate(
                request.headers.get("accept-language"),
                request.cookies.get(framework.LOCALE_COOKIE),
            )
        )
    title = TITLES.get(status, "Error")
    return framework.render(
        request,
        "errors/error.html",
        {"status": status, "title": title, "detail": detail},
        status=status,
        viewer=viewer,
    )


def sign_in_required(request: Request, exc: framework.SignInRequired) -> Response:
    return RedirectResponse(framework.sign_in_url(exc.next_url), status_code=303)


def csrf_rejected(request: Request, _exc: framework.CsrfRejected) -> Response:
    log.info("CSRF token missing or wrong on %s", request.url.path)
    return error_page(
        request, 403, "This form has expired or did not come from this site. Reload and retry."
    )
