"""Helpers for webhook tests: domain events of a merchant, endpoint registration."""

from __future__ import annotations

import uuid

from factories import Tenant
from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.codes.events import CodeRedeemed
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.visits.events import VisitRecorded
from o2oloop.webhooks import deliveries, endpoints, schemas


def redeemed(merchant_id: str, *, code_id: str = "cod_1", store_id: str = "sto_1") -> CodeRedeemed:
    """A code.redeemed event of the merchant's, as the counter records it."""
    return CodeRedeemed(
        merchant_id=merchant_id,
        store_id=store_id,
        terminal_id="ter_1",
        offer_id="off_1",
        redemption_id="red_1",
        code_id=code_id,
        batch_id=None,
        consumer_id=None,
        bill_amount=12_800,
        discount_amount=1_000,
        currency="CNY",
    )


def visit(merchant_id: str) -> VisitRecorded:
    return VisitRecorded(
        merchant_id=merchant_id,
        store_id="sto_1",
        visit_id="vis_1",
        member_id=None,
        amount=5_000,
        currency="CNY",
        visited_at=clock.now(),
        redemption_id=None,
    )


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
