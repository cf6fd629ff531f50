"""What a merchant sees over HTTP: deliveries, every attempt, and a replay with the same
webhook-id; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import LiveServer
from factories import make_tenant
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries
from o2oloop.webhooks.dispatch import Dispatcher
from webhook_receiver import Answer, receiving
from webhooks_kit import make_webhook_delivery, redeemed


@pytest.fixture
def hook_http(db: Database, hook_settings: Settings) -> Iterator[httpx.Client]:
    """The API of a development deployment that may reach loopback receivers."""
    with (
        LiveServer(create_app(hook_settings, db)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        yield client


def test_attempts_are_listed_and_a_delivery_replayed(
    db: Database, hook_http: httpx.Client, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    answers = iter([Answer(500, b"x" * 5000), Answer(200, b"thanks"), Answer(200, b"again")])
    with receiving(lambda _r: next(answers)) as receiver:
        base = f"/v1/merchants/{tenant.merchant_id}/webhook-endpoints"
        created = hook_http.post(
            base,
            json={"url": receiver.url, "event_types": ["code.redeemed"]},
            headers=tenant.admin,
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["endpoint"]["id"]
        with db.transaction() as session:
            deliveries.on_domain_event(session, redeemed(tenant.merchant_id))
        dispatcher.run_due()
        receiver.wait_for(1)
        time.sleep(0.1)  # the retry is due 50 ms after the failure
        dispatcher.run_due()
        receiver.wait_for(2)

        listed = hook_http.get(f"{base}/{endpoint_id}/deliveries", headers=tenant.admin).json()
        (delivery,) = listed["data"]
        assert delivery["state"] == "delivered" and delivery["attempts"] == 2
        attempts = hook_http.get(f"{base}/{endpoint_id}/attempts", headers=tenant.admin).json()
        assert [(a["status"], a["succeeded"]) for a in attempts["data"]] == [
            (500, False),
            (200, True),
        ]
        assert len(attempts["data"][0]["response_excerpt"]) == 1024  # of a 5,000-byte answer
        assert all(a["latency_ms"] >= 0 for a in attempts["data"])

        replay = hook_http.post(
            f"{base}/{endpoint_id}/deliveries/{delivery['id']}/replay",
            headers={**tenant.admin, "Idempotency-Key": "replay-1"},
        )
        assert replay.status_code == 200, replay.text
        assert replay.json()["state"] == "pending"
        dispatcher.run_due()
        third = receiver.wait_for(3)[2]
    assert third.headers["webhook-id"] == delivery["id"]
    only = hook_http.get(
        f"{base}/{endpoint_id}/attempts",
        params={"delivery_id": delivery["id"], "limit": 2},
        headers=tenant.admin,
    ).json()
    assert len(only["data"]) == 2 and only["next_cursor"] is not None


def test_a_replay_of_another_merchants_delivery_is_not_found(
    db: Database, hook_http: httpx.Client
) -> None:
    victim, intruder = make_tenant(db), make_tenant(db)
    endpoint_id, delivery_id = make_webhook_delivery(db, victim)
    for merchant in (victim.merchant_id, intruder.merchant_id):
        answer = hook_http.post(
            f"/v1/merchants/{merchant}/webhook-endpoints/{endpoint_id}/deliveries/"
            f"{delivery_id}/replay",
            headers=intruder.admin,
        )
        assert answer.status_code == 404
