"""Mounts the pages on the app: static files, error handling, every page router."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from o2oloop.web import auth_pages, errors, framework


def page_routers() -> list:
    """Every router of pages, in the order they are tried."""
    from o2oloop.terminal.pages import router as terminal_pages
    from o2oloop.terminal.pairing_pages import router as pairing_pages
    from o2oloop.web.admin import router as admin_pages
    from o2oloop.web.console import routers as console_routers
    from o2oloop.web.offer_page import router as offer_pages

    return [
        auth_pages.router,
        pairing_pages,
        terminal_pages,
        admin_pages,
        *console_routers(),
        offer_pages,
    ]


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=framework.STATIC), name="static")
    app.add_exception_handler(framework.SignInRequired, errors.sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(framework.CsrfRejected, errors.csrf_rejected)  # type: ignore[arg-type]
    for router in page_routers():
        app.include_router(router)
