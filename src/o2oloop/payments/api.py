"""Payment routes: the provider's webhook and the consumer's view of a payment."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Request

from o2oloop.auth.models import Role
from o2oloop.db import Database
from o2oloop.errors import Forbidden
from o2oloop.http import Caller, Reading, problems
from o2oloop.payments import schemas, service
from o2oloop.payments.provider import webhook_secret

router = APIRouter(prefix="/v1", tags=["payments"], responses=problems(401, 403, 404, 422))


@router.post(
    "/payments/webhooks/sandbox",
    responses=problems(401),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def sandbox_webhook(
    request: Request,
    signature: Annotated[
        str | None,
        Header(
            alias="O2O-Signature",
            max_length=500,
            description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
        ),
    ] = None,
) -> schemas.WebhookReceived:
    """Events from the sandbox provider. A replayed event id is acknowledged and ignored."""
    payload = await request.body()
    db: Database = request.app.state.db
    secret = webhook_secret(request.app.state.settings.secret_key)

    def handle() -> service.WebhookOutcome:
        with db.transaction() as session:
            return service.receive_webhook(
                session, payload=payload, signature=signature, secret=secret
            )

    outcome = await to_thread.run_sync(handle)
    return schemas.WebhookReceived(
        event_id=outcome.event_id,
        type=outcome.type,
        duplicate=outcome.duplicate,
        result=outcome.result,
    )


@router.get("/consumers/me/payment-intents/{payment_intent_id}")
def get_payment_intent(
    payment_intent_id: str, session: Reading, caller: Caller
) -> schemas.PaymentIntentRead:
    if caller.role is not Role.CONSUMER and not caller.is_platform:
        raise Forbidden("this needs a consumer key")
    intent = service.get_intent(
        session,
        payment_intent_id=payment_intent_id,
        consumer_id=None if caller.is_platform else caller.consumer_id,
    )
    return schemas.PaymentIntentRead.model_validate(intent)
