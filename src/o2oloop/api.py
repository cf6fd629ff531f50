"""The FastAPI application: every domain's router and one mapping of errors to problem+json."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from o2oloop import __version__
from o2oloop.analytics.api import platform_router as platform_analytics_router
from o2oloop.analytics.api import router as analytics_router
from o2oloop.auth import service as keys
from o2oloop.auth.api import router as keys_router
from o2oloop.bootstrap import Wiring, bootstrap
from o2oloop.campaigns.api import platform_router as platform_campaigns_router
from o2oloop.campaigns.api import router as campaigns_router
from o2oloop.channels.api import router as channels_router
from o2oloop.channels.api import tracking_router
from o2oloop.channels.counts import Counts
from o2oloop.codes.api import router as codes_router
from o2oloop.config import Settings, get_settings
from o2oloop.customers.api import members_router
from o2oloop.customers.api import router as consumers_router
from o2oloop.db import Database
from o2oloop.errors import PROBLEM_MEDIA_TYPE, ProblemError, problem
from o2oloop.http import problem_response
from o2oloop.idempotency.middleware import IdempotencyMiddleware
from o2oloop.jobs.api import router as jobs_router
from o2oloop.jobs.in_process import InProcessWorker
from o2oloop.jobs.pace import Activity, ActivityMiddleware
from o2oloop.members.api import router as member_card_router
from o2oloop.merchants.api import router as merchants_router
from o2oloop.notify.api import router as notify_router
from o2oloop.offers.api import router as offers_router
from o2oloop.payments.api import router as payments_router
from o2oloop.privacy.api import router as privacy_router
from o2oloop.reconciliation.api import router as reconciliation_router
from o2oloop.reviews.api import router as reviews_router
from o2oloop.settlement.api import router as settlement_router
from o2oloop.sim.api import router as demo_city_router
from o2oloop.stored_value.api import router as stored_value_router
from o2oloop.terminal.api import router as pairing_router
from o2oloop.terminal.pages import router as terminal_pages
from o2oloop.terminal.pairing_pages import router as pairing_pages
from o2oloop.visits.api import router as visits_router
from o2oloop.web import errors as web_errors
from o2oloop.web import routes as web_routes
from o2oloop.webhooks.api import router as webhooks_router

log = logging.getLogger("o2oloop.api")

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing or invalid credentials"),
    403: ("forbidden", "Not allowed for this role"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        errors.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return errors


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at this path, as the API documents them: the router's own
    405 names only those of the first route that matched. A literal path
    (`/campaigns/preview`) is its own resource, not an instance of a templated one
    (`/campaigns/{campaign_id}`) that also matches it. Pages, undocumented, answer with the
    methods of every route that serves the path."""
    documented = _documented_methods(request.app, request.url.path)
    if documented:
        return documented
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _documented_methods(app: FastAPI, path: str) -> list[str]:
    templates = getattr(app.state, "path_templates", None)
    if templates is None:
        templates = app.state.path_templates = [
            (
                re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"),
                template.count("{"),
                [method.upper() for method in operations if method != "parameters"],
            )
            for template, operations in app.openapi().get("paths", {}).items()
        ]
    matching = [(params, methods) for pattern, params, methods in templates if pattern.match(path)]
    if not matching:
        return []
    fewest = min(params for params, _ in matching)
    return sorted({m for params, methods in matching if params == fewest for m in methods})


def _lacks_its_key(request: Request) -> bool:
    """A request to an operation that needs a key, without a well-formed one: 401 comes
    before anything its parameters or body get wrong (routes that check the key inside
    their own work, like the counter's, are validated before that work runs)."""
    route = request.scope.get("route")
    secured = getattr(request.app.state, "secured_operations", None)
    if secured is None:
        secured = request.app.state.secured_operations = {
            (method.upper(), template)
            for template, operations in request.app.openapi().get("paths", {}).items()
            for method, operation in operations.items()
            if isinstance(operation, dict) and operation.get("security")
        }
    if (request.method, getattr(route, "path", None)) not in secured:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() != "bearer" or not keys.well_formed(token.strip())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _domain(request: Request, exc: ProblemError) -> Response:
        if web_errors.is_page(request):
            return await _page_error(request, exc.status, exc.detail)
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if web_errors.is_page(request):
            return await _page_error(
                request, 400, "This address or form is not in the expected form."
            )
        if _lacks_its_key(request):
            body = problem(
                401,
                "unauthorized",
                "Missing or invalid credentials",
                "send an API key as 'Authorization: Bearer o2o_key_…'",
                request.url.path,
            )
            return _problem_response(body)
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        body = problem(
            422,
            "invalid-input",
            "Invalid input",
            f"{where}: {first['msg']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            request.url.path,
            errors=jsonable_encoder(errors),
        )
        return _problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        if web_errors.is_page(request):
            page = await _page_error(request, exc.status_code)
            page.headers.update(headers)
            return page
        status = exc.status_code
        slug, title = _HTTP_SLUGS.get(status, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if status == 400:  # the framework could not read the body: invalid input, as documented
            status, slug, title = 422, "invalid-input", "Invalid input"
            detail = "the body is not valid JSON (or not UTF-8)"
        if status == 401:
            detail = "send an API key as 'Authorization: Bearer o2o_key_…'"
        body = problem(status, slug, title, detail, request.url.path)
        return _problem_response(body, headers=headers or None)

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", exc)
        if web_errors.is_page(request):
            return web_errors.error_page(request, 503, "The database is busy; retry shortly.")
        body = problem(
            503,
            "database-busy",
            "Service busy",
            "the database is busy; retry shortly",
            request.url.path,
        )
        return _problem_response(body, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if web_errors.is_page(request):
            return web_errors.error_page(request, 500, "It was logged; try again in a moment.")
        body = problem(
            500,
            "internal-error",
            "Internal error",
            "an unexpected error occurred; it was logged",
            request.url.path,
        )
        return _problem_response(body)


async def _page_error(request: Request, status: int, detail: str = "") -> Response:
    """An error on a page is a page (resolving the reader may read the session store)."""
    return await to_thread.run_sync(lambda: web_errors.error_page(request, status, detail))


def create_app(
    settings: Settings,
    db: Database,
    wiring: Wiring | None = None,
    *,
    in_process_worker: bool = False,
) -> FastAPI:
    """The app; `wiring` (handlers, jobs, adapters) is `bootstrap(settings)` unless given.

    With `in_process_worker` (the server of `serve` and `up`) on SQLite, one server process
    also runs the worker pool (`jobs.in_process`), from start-up to shutdown.
    """
    activity = Activity()
    worker = None
    if in_process_worker and settings.jobs_in_process and db.dialect == "sqlite":
        worker = InProcessWorker(db, wiring or bootstrap(settings, db=db), settings, activity)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        if worker is not None:
            worker.start()
        app.state.channel_counts.start()
        yield
        if worker is not None:
            await to_thread.run_sync(worker.stop)
        await to_thread.run_sync(app.state.channel_counts.stop)

    app = FastAPI(
        lifespan=lifespan,
        title="o2oloop",
        version=__version__,
        description=(
            "The O2O closed loop: offers online, verified consumption offline, money in escrow, "
            "consumption data back online, the next offer to the right consumer."
        ),
        openapi_url="/openapi.json",
    )
    app.state.db = db
    app.state.settings = settings
    app.state.wiring = worker.wiring if worker is not None else wiring or bootstrap(settings, db=db)
    app.state.wiring.install(db)
    app.state.worker = worker
    app.state.channel_counts = Counts(db)
    install_error_handlers(app)
    app.add_middleware(
        IdempotencyMiddleware,
        database=lambda: app.state.db,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )
    if worker is not None:
        app.add_middleware(ActivityMiddleware, activity=activity)
    # Routes are tried in order, and rejecting an included router costs its every route
    # (tens of microseconds each for the big ones): tracking links first, one route of
    # their own behind every shared link and poster, then the counter's (codes), the
    # busiest API by far.
    for router in (
        tracking_router,
        codes_router,
        keys_router,
        merchants_router,
        consumers_router,
        privacy_router,
        channels_router,  # before offers: /offers/nearby is not an offer id
        offers_router,
        stored_value_router,
        settlement_router,
        reconciliation_router,
        payments_router,
        members_router,
        member_card_router,
        visits_router,
        analytics_router,
        platform_analytics_router,
        demo_city_router,
        campaigns_router,
        platform_campaigns_router,
        notify_router,
        pairing_router,
        webhooks_router,
        jobs_router,
        reviews_router,
    ):
        app.include_router(router)

    web_routes.install(app, terminal=[pairing_pages, terminal_pages])

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment, schema already migrated."""
    settings = get_settings()
    settings.check_production()
    db = Database.from_url(settings.effective_database_url)
    app = create_app(settings, db, in_process_worker=True)
    # What exists now (modules, models, routes) lives as long as the worker: keep it out of
    # the collector's full passes, which would otherwise pause requests to walk it again.
    gc.collect()
    gc.freeze()
    return app
