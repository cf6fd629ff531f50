"""Mounts the pages on the app: static files, error handling, every page router."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from o2oloop.web import auth_pages, errors, framework
from o2oloop.web.admin import router as admin_pages
from o2oloop.web.console import routers as console_routers
from o2oloop.web.offer_page import router as offer_pages


def page_routers(terminal: list[APIRouter]) -> list[APIRouter]:
    """Every router of pages, in the order they are tried; the terminal's pages (which use
    this framework, so it cannot import them) are handed in by the app."""
    return [auth_pages.router, *terminal, admin_pages, *console_routers(), offer_pages]


def install(app: FastAPI, *, terminal: list[APIRouter]) -> None:
    app.mount("/static", StaticFiles(directory=framework.STATIC), name="static")
    app.add_exception_handler(framework.SignInRequired, errors.sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(framework.CsrfRejected, errors.csrf_rejected)  # type: ignore[arg-type]
    for router in page_routers(terminal):
        app.include_router(router)
