"""Webhook endpoints: where the merchant's systems hear of events, each delivery and every
attempt, a replay, and rotating the signing secret (shown once, never stored readable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.forms import FormInvalid, parse
from o2oloop.web.framework import CSRF, Form, FormLists, MerchantPerson
from o2oloop.webhooks import endpoints, history, schemas
from o2oloop.webhooks.catalog import EVENT_TYPES

router = APIRouter(include_in_schema=False, dependencies=CSRF)
SHOWN = 30


def _list_page(
    request: Request,
    viewer: framework.Viewer,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        rows, _ = endpoints.list_endpoints(
            session, principal=viewer.principal, merchant_id=merchant.id, cursor=None, limit=100
        )
    return framework.render(
        request,
        "console/webhooks.html",
        {
            "merchant": merchant,
            "endpoints": rows,
            "event_types": sorted(EVENT_TYPES.items()),
            "values": values or {"event_types": []},
            "errors": errors or {},
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/webhooks")
def endpoint_list(request: Request, viewer: MerchantPerson) -> Response:
    return _list_page(request, viewer)


def _endpoint_page(
    request: Request,
    viewer: framework.Viewer,
    endpoint_id: str,
    *,
    secret: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        scope = {"principal": viewer.principal, "merchant_id": merchant.id}
        endpoint = endpoints.get_endpoint(session, endpoint_id=endpoint_id, **scope)
        deliveries = history.recent_deliveries(
            session, endpoint_id=endpoint_id, limit=SHOWN, **scope
        )
        attempts = history.recent_attempts(session, endpoint_id=endpoint_id, limit=SHOWN, **scope)
    return framework.render(
        request,
        "console/webhook.html",
        {
            "merchant": merchant,
            "endpoint": endpoint,
            "deliveries": deliveries,
            "attempts": attempts,
            "event_types": EVENT_TYPES,
            "secret": secret,
            "errors": errors or {},
        },
        status=409 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/webhooks/{endpoint_id}")
def endpoint_page(request: Request, viewer: MerchantPerson, endpoint_id: str) -> Response:
    return _endpoint_page(request, viewer, endpoint_id)


@router.post("/console/webhooks")
def create_endpoint(request: Request, viewer: MerchantPerson, form: FormLists) -> Response:
    """The secret is shown on this answer only: it is stored encrypted, never shown again."""
    settings = request.app.state.settings
    values = {
        "url": (form.get("url") or [""])[0].strip(),
        "description": (form.get("description") or [""])[0].strip(),
        "event_types": form.get("event_types") or [],
    }
    try:
        data = parse(schemas.WebhookEndpointCreate, values)
        endpoint, secret = common.act(
            request, viewer, endpoints.create_endpoint, owned=True, data=data, settings=settings
        )
    except FormInvalid as invalid:
        return _list_page(request, viewer, values=values, errors=_url_error(invalid.errors))
    return _endpoint_page(request, viewer, endpoint.id, secret=secret)


def _url_error(errors: dict[str, str]) -> dict[str, str]:
    """The service refuses a private or malformed address as a whole: say so beside the URL."""
    general = errors.get("__all__", "")
    if "url" not in errors and ("url" in general or "address" in general):
        return {"url": general, **{k: v for k, v in errors.items() if k != "__all__"}}
    return errors


@router.post("/console/webhooks/{endpoint_id}/rotate")
def rotate_secret(
    request: Request, viewer: MerchantPerson, endpoint_id: str, form: Form
) -> Response:
    settings = request.app.state.settings
    overlap = form.get("overlap_hours", "24").strip() or "24"
    try:
        data = parse(schemas.SecretRotation, {"overlap_hours": overlap})
        _, secret = common.act(
            request,
            viewer,
            endpoints.rotate_secret,
            owned=True,
            endpoint_id=endpoint_id,
            data=data,
            settings=settings,
        )
    except FormInvalid as invalid:
        return _endpoint_page(request, viewer, endpoint_id, errors=invalid.errors)
    return _endpoint_page(request, viewer, endpoint_id, secret=secret)


@router.post("/console/webhooks/{endpoint_id}/enabled")
def switch_endpoint(
    request: Request, viewer: MerchantPerson, endpoint_id: str, form: Form
) -> Response:
    data = schemas.WebhookEndpointUpdate(enabled=form.get("enabled") == "1")
    try:
        common.act(
            request,
            viewer,
            endpoints.update_endpoint,
            owned=True,
            endpoint_id=endpoint_id,
            data=data,
            settings=request.app.state.settings,
        )
    except FormInvalid as invalid:
        return _endpoint_page(request, viewer, endpoint_id, errors=invalid.errors)
    return framework.redirect(f"/console/webhooks/{endpoint_id}", done="saved")


@router.post("/console/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay")
def replay(
    request: Request, viewer: MerchantPerson, endpoint_id: str, delivery_id: str
) -> Response:
    try:
        common.act(
            request,
            viewer,
            history.replay_delivery,
            owned=True,
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
        )
    except FormInvalid as invalid:
        return _endpoint_page(request, viewer, endpoint_id, errors=invalid.errors)
    return framework.redirect(f"/console/webhooks/{endpoint_id}", done="replayed")
