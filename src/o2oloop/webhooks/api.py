"""Routes for merchant webhook endpoints, their deliveries and attempts: thin, as ever."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from o2oloop.config import Settings
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, problems
from o2oloop.pagination import Page, page_of
from o2oloop.webhooks import endpoints, history, schemas
from o2oloop.webhooks.catalog import EVENT_TYPES
from o2oloop.webhooks.models import DeliveryState

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=problems(401, 403, 404, 409, 422))
BASE = "/merchants/{merchant_id}/webhook-endpoints"


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(_settings)]
_DEFAULT_ROTATION = Body(default_factory=schemas.SecretRotation)


@router.get("/webhook-event-types")
def list_event_types(_caller: Caller) -> list[schemas.EventTypeRead]:
    return [schemas.EventTypeRead(type=t, description=d) for t, d in sorted(EVENT_TYPES.items())]


@router.post(BASE, status_code=201, dependencies=IDEMPOTENT)
def create_endpoint(
    merchant_id: str,
    data: schemas.WebhookEndpointCreate,
    db: DB,
    caller: Caller,
    settings: AppSettings,
) -> schemas.WebhookEndpointCreated:
    with db.transaction() as session:
        endpoint, secret = endpoints.create_endpoint(
            session, principal=caller, merchant_id=merchant_id, data=data, settings=settings
        )
        return schemas.WebhookEndpointCreated(
            endpoint=schemas.WebhookEndpointRead.model_validate(endpoint), secret=secret
        )


@router.get(BASE)
def list_endpoints(
    merchant_id: str, db: DB, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.WebhookEndpointRead]:
    with db.reading() as session:
        rows, next_cursor = endpoints.list_endpoints(
            session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
        )
        return page_of(schemas.WebhookEndpointRead, rows, next_cursor)


@router.get(BASE + "/{endpoint_id}")
def get_endpoint(
    merchant_id: str, endpoint_id: str, db: DB, caller: Caller
) -> schemas.WebhookEndpointRead:
    with db.reading() as session:
        endpoint = endpoints.get_endpoint(
            session, principal=caller, merchant_id=merchant_id, endpoint_id=endpoint_id
        )
        return schemas.WebhookEndpointRead.model_validate(endpoint)


@router.patch(BASE + "/{endpoint_id}")
def update_endpoint(
    merchant_id: str,
    endpoint_id: str,
    data: schemas.WebhookEndpointUpdate,
    db: DB,
    caller: Caller,
    settings: AppSettings,
) -> schemas.WebhookEndpointRead:
    with db.transaction() as session:
        endpoint = endpoints.update_endpoint(
            session,
            principal=caller,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            data=data,
            settings=settings,
        )
        return schemas.WebhookEndpointRead.model_validate(endpoint)


@router.post(BASE + "/{endpoint_id}/rotate-secret", dependencies=IDEMPOTENT)
def rotate_secret(
    merchant_id: str,
    endpoint_id: str,
    db: DB,
    caller: Caller,
    settings: AppSettings,
    data: schemas.SecretRotation = _DEFAULT_ROTATION,
) -> schemas.SecretRotated:
    with db.transaction() as session:
        endpoint, secret = endpoints.rotate_secret(
            session,
            principal=caller,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            data=data,
            settings=settings,
        )
        return schemas.SecretRotated(
            endpoint=schemas.WebhookEndpointRead.model_validate(endpoint),
            secret=secret,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
        )


@router.get(BASE + "/{endpoint_id}/deliveries")
def list_deliveries(
    merchant_id: str,
    endpoint_id: str,
    db: DB,
    caller: Caller,
    state: DeliveryState | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.WebhookDeliveryRead]:
    with db.reading() as session:
        rows, next_cursor = history.list_deliveries(
            session,
            principal=caller,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            state=state,
            cursor=cursor,
            limit=limit,
        )
        return page_of(schemas.WebhookDeliveryRead, rows, next_cursor)


@router.get(BASE + "/{endpoint_id}/attempts")
def list_attempts(
    merchant_id: str,
    endpoint_id: str,
    db: DB,
    caller: Caller,
    delivery_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.WebhookAttemptRead]:
    with db.reading() as session:
        rows, next_cursor = history.list_attempts(
            session,
            principal=caller,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
            cursor=cursor,
            limit=limit,
        )
        return page_of(schemas.WebhookAttemptRead, rows, next_cursor)


@router.post(BASE + "/{endpoint_id}/deliveries/{delivery_id}/replay", dependencies=IDEMPOTENT)
def replay_delivery(
    merchant_id: str, endpoint_id: str, delivery_id: str, db: DB, caller: Caller
) -> schemas.WebhookDeliveryRead:
    with db.transaction() as session:
        delivery = history.replay_delivery(
            session,
            principal=caller,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
        )
        return schemas.WebhookDeliveryRead.model_validate(delivery)
