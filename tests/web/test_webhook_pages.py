"""Webhook pages: an endpoint added with its secret shown once, refused addresses beside the
field, a new secret by rotation, a delivery sent again; staff and other merchants kept out."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from factories import make_tenant
from o2oloop.auth.models import Role
from o2oloop.db import Database
from o2oloop.webhooks.models import DeliveryState, WebhookDelivery
from web_kit import csrf_of, make_person, sign_in, submit
from webhooks_kit import make_webhook_delivery

SECRET = re.compile(r'<code class="wrap secret">(whsec_[^<]+)</code>')


def test_an_endpoint_is_added_rotated_and_replayed(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))

    refused = submit(
        http,
        "/console/webhooks",
        "/console/webhooks",
        {"url": "http://127.0.0.1:9/hook", "event_types": "code.redeemed"},
    )
    assert refused.status_code == 422 and 'id="e-url"' in refused.text
    assert 'value="http://127.0.0.1:9/hook"' in refused.text  # kept as typed
    none_chosen = submit(
        http, "/console/webhooks", "/console/webhooks", {"url": "https://hooks.example.com/a"}
    )
    assert none_chosen.status_code == 422 and "Please correct" in none_chosen.text

    created = submit(
        http,
        "/console/webhooks",
        "/console/webhooks",
        {"url": "https://hooks.example.com/a", "event_types": "visit.recorded"},
    )
    assert created.status_code == 200
    first = SECRET.search(created.text)
    assert first, "the new secret is shown once"
    (endpoint_path,) = set(
        re.findall(r'action="(/console/webhooks/whe_[^/"]+)/rotate"', created.text)
    )
    assert SECRET.search(http.get(endpoint_path).text) is None  # and never again

    rotated = submit(http, endpoint_path, f"{endpoint_path}/rotate", {"overlap_hours": "2"})
    second = SECRET.search(rotated.text)
    assert second and second.group(1) != first.group(1)
    assert "keeps signing beside it" in rotated.text
    bad = submit(http, endpoint_path, f"{endpoint_path}/rotate", {"overlap_hours": "999"})
    assert bad.status_code == 409 and 'id="e-overlap_hours"' in bad.text


def test_a_delivery_is_sent_again(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    endpoint_id, delivery_id = make_webhook_delivery(db, tenant)
    with db.transaction() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.state, delivery.attempts, delivery.next_attempt_at = DeliveryState.FAILED, 10, None
    sign_in(http, make_person(db, tenant))
    path = f"/console/webhooks/{endpoint_id}"
    page = http.get(path).text
    assert "code.redeemed" in page and "gave up" in page and "Send again" in page
    sent = submit(http, path, f"{path}/deliveries/{delivery_id}/replay", {})
    assert sent.status_code == 303
    with db.reading() as session:
        state = session.scalar(
            select(WebhookDelivery.state).where(WebhookDelivery.id == delivery_id)
        )
    assert state is DeliveryState.PENDING


def test_staff_and_other_merchants_are_kept_out(db: Database, http: httpx.Client) -> None:
    mine, theirs = make_tenant(db), make_tenant(db)
    endpoint_id, delivery_id = make_webhook_delivery(db, theirs)
    sign_in(http, make_person(db, mine))
    token = csrf_of(http.get("/console/webhooks").text)
    assert http.get(f"/console/webhooks/{endpoint_id}").status_code == 404
    replay = f"/console/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay"
    assert http.post(replay, data={"csrf_token": token}).status_code == 404
    assert http.post(replay, data={}).status_code == 403  # no CSRF token
    with httpx.Client(base_url=str(http.base_url), timeout=30) as staff:
        sign_in(staff, make_person(db, mine, role=Role.MERCHANT_STAFF))
        assert staff.get("/console/webhooks").status_code == 403
