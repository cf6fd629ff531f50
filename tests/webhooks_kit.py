"""Helpers for webhook tests: stand-in domain events and endpoint registration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from factories import Tenant
from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries, endpoints, schemas


# Stand-ins shaped like the domain events (frozen, kw_only, event_id and occurred_at filled
# in); the handler knows them by class name.
@dataclass(frozen=True, kw_only=True)
class CodeRedeemed:
    merchant_id: str
    code_id: str
    store_id: str
    amount: int = 0
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=clock.now)


@dataclass(frozen=True, kw_only=True)
class VisitRecorded:
    merchant_id: str
    visit_id: str
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=clock.now)


def admin_of(merchant_id: str) -> Principal:
    return Principal(key_id="tests", role=Role.MERCHANT_ADMIN, merchant_id=merchant_id)


def register(
    db: Database,
    settings: Settings,
    merchant_id: str,
    url: str,
    event_types: tuple[str, ...] = ("code.redeemed",),
) -> tuple[str, str]:
    """An endpoint of the merchant's; (endpoint id, secret)."""
    with db.transaction() as session:
        endpoint, secret = endpoints.create_endpoint(
            session,
            principal=admin_of(merchant_id),
            merchant_id=merchant_id,
            data=schemas.WebhookEndpointCreate(url=url, event_types=list(event_types)),
            settings=settings,
        )
        return endpoint.id, secret


def make_webhook_delivery(db: Database, tenant: Tenant) -> tuple[str, str]:
    """An endpoint of the tenant's with one delivery queued for it: (endpoint id, delivery id)."""
    settings = Settings(env="test", secret_key="test-secret-" + "x" * 32)
    endpoint_id, _ = register(db, settings, tenant.merchant_id, "https://hooks.example.com/")
    with db.transaction() as session:
        (delivery,) = deliveries.queue_event(
            session,
            merchant_id=tenant.merchant_id,
            event_id=uuid.uuid4().hex,
            event_type="code.redeemed",
            occurred_at=clock.now(),
            data={"code_id": "cod_1"},
        )
        return endpoint_id, delivery.id
