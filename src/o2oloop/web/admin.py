"""The platform admin's pages: merchants (onboard, deactivate, close), reconciliation, and
the worker's dead-letter jobs. Every action is the service layer's, as a platform admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from o2oloop.errors import NotFound, ProblemError
from o2oloop.jobs import service as jobs_service
from o2oloop.jobs.models import JobState
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category, Merchant, Store
from o2oloop.money import SUPPORTED_CURRENCIES
from o2oloop.reconciliation import service as reconciliation
from o2oloop.stored_value import service as stored_value
from o2oloop.validation import FORM
from o2oloop.web import errors, forms, framework
from o2oloop.web.framework import CSRF, Form, Viewer

router = APIRouter(tags=["pages"], include_in_schema=False)


def platform_person(request: Request) -> Viewer:
    """Platform admins only: anyone else signed in gets a 404, as for another tenant's page."""
    viewer = framework.signed_in(request)
    if not viewer.is_platform:
        raise NotFound("no such page")
    return viewer


Admin = Annotated[Viewer, Depends(platform_person)]


def _merchants(request: Request, viewer: Viewer) -> list[tuple[Merchant, int]]:
    with request.app.state.db.reading() as session:
        found, _ = merchants.list_merchants(
            session, principal=viewer.principal, cursor=None, limit=200
        )
        stores = dict(
            session.execute(
                select(Store.merchant_id, func.count()).group_by(Store.merchant_id)
            ).all()
        )
        session.expunge_all()
    return [(m, stores.get(m.id, 0)) for m in found]


def _page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
    values = {
        "rows": _merchants(request, viewer),
        "categories": [c.value for c in Category],
        "currencies": SUPPORTED_CURRENCIES,
        "created": None,
        "notice": "",
        "values": {
            "currency": "CNY",
            "timezone": "Asia/Shanghai",
            "country": "CN",
            "commission_bps": "500",
        },
        "errors": {},
        **context,
    }
    return framework.render(request, "admin/merchants.html", values, status=status)


@router.get("/admin", response_class=HTMLResponse)
def merchants_page(request: Request, viewer: Admin) -> HTMLResponse:
    return _page(request, viewer)


@router.post("/admin/merchants", dependencies=CSRF, response_class=HTMLResponse)
def onboard(request: Request, viewer: Admin, form: Form) -> HTMLResponse:
    """A new merchant and its owner's first admin key (shown once, like the API's)."""
    try:
        data = merchant_schemas.MerchantCreate.model_validate(form, context=FORM)
    except ValidationError as invalid:
        return _page(request, viewer, 422, values=form, errors=forms.validation_errors(invalid))
    with request.app.state.db.transaction() as session:
        merchant, _owner, token, _key = merchants.create_merchant(
            session, principal=viewer.principal, data=data
        )
        created = {"id": merchant.id, "name": merchant.name, "token": token}
    return _page(request, viewer, created=created)


@router.post("/admin/merchants/{merchant_id}/deactivate", dependencies=CSRF)
def deactivate(request: Request, merchant_id: str, viewer: Admin) -> Response:
    with request.app.state.db.transaction() as session:
        merchants.deactivate_merchant(session, principal=viewer.principal, merchant_id=merchant_id)
    return framework.redirect("/admin", done="deactivated")


@router.post("/admin/merchants/{merchant_id}/close", dependencies=CSRF, response_class=HTMLResponse)
def close(request: Request, merchant_id: str, viewer: Admin) -> HTMLResponse:
    """Close for good: every stored-value balance is refunded to its consumer, then the
    merchant is switched off (refunds complete through the provider, as payouts)."""
    try:
        with request.app.state.db.transaction() as session:
            refunds = stored_value.refund_all(
                session, principal=viewer.principal, merchant_id=merchant_id
            )
            merchants.deactivate_merchant(
                session, principal=viewer.principal, merchant_id=merchant_id
            )
    except NotFound:
        raise
    except ProblemError as refused:
        return _page(request, viewer, 409, notice=refused.detail)
    return _page(
        request, viewer,
        notice=f"closed: {len(refunds)} stored-value balances are being refunded",
    )  # fmt: skip


@router.get("/admin/reconciliation", response_class=HTMLResponse)
def reconciliation_page(request: Request, viewer: Admin) -> HTMLResponse:
    with request.app.state.db.reading() as session:
        differences = reconciliation.report(session)
    return framework.render(request, "admin/reconciliation.html", {"differences": differences})


@router.get("/admin/jobs", response_class=HTMLResponse)
def dead_jobs(request: Request, viewer: Admin) -> HTMLResponse:
    """The worker's dead-letter jobs (handlers that failed every attempt), newest first,
    each with a retry button; the counts of every state above them."""
    with request.app.state.db.reading() as session:
        jobs, _ = jobs_service.list_jobs(
            session, principal=viewer.principal, state=JobState.DEAD, limit=200
        )
        counts = jobs_service.counts(session, principal=viewer.principal)
        session.expunge_all()
    return framework.render(
        request, "admin/jobs.html", {"jobs": list(reversed(jobs)), "counts": counts}
    )


@router.post("/admin/jobs/{job_id}/retry")
def retry_job(request: Request, viewer: Admin, job_id: str) -> Response:
    """A dead job pending again now, with a fresh set of attempts (the worker takes it)."""
    db = request.app.state.db

    def work() -> None:
        with db.transaction() as session:
            jobs_service.retry_job(session, principal=viewer.principal, job_id=job_id)

    try:
        forms.attempt_owned(work)
    except forms.FormInvalid as invalid:
        return errors.error_page(request, 409, next(iter(invalid.errors.values())))
    return framework.redirect("/admin/jobs", done="retried")
