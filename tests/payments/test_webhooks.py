"""The sandbox provider completes payments later, by signed webhooks the platform verifies."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from factories import bearer, make_consumer, make_tenant
from money_kit import deliver, give_program, react, top_up
from o2oloop.clock import FrozenClock
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.ledger.models import LedgerTransaction
from o2oloop.payments.models import IntentStatus, PaymentIntent, ProcessedWebhookEvent
from o2oloop.payments.provider import (
    SIGNATURE_HEADER,
    deliver_pending_events,
    http_sender,
    sign,
    webhook_secret,
)
from o2oloop.reconciliation import service as reconciliation

WEBHOOK = "/v1/payments/webhooks/sandbox"


def _state(db: Database) -> tuple[int, int, list[str]]:
    with db.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            session.scalar(select(func.count()).select_from(ProcessedWebhookEvent)) or 0,
            [
                i.status.value
                for i in session.scalars(select(PaymentIntent).order_by(PaymentIntent.id))
            ],
        )


def _captured_event(db: Database, secret: str) -> tuple[bytes, dict[str, str]]:
    """Let the sandbox complete the charge, but capture its webhook instead of delivering it."""
    captured: list[tuple[bytes, dict[str, str]]] = []

    def capture(body: bytes, headers: dict[str, str]) -> int:
        captured.append((body, headers))
        return 503  # not delivered: the sandbox will retry later

    react(db)  # the committed intent's charge is asked for
    report = deliver_pending_events(db, send=capture, secret=secret)
    assert report.completed == 1 and report.failed == 1 and len(captured) == 1
    return captured[0]


def test_top_up_completes_only_when_the_signed_webhook_arrives(
    db: Database, http: httpx.Client, settings: Settings, frozen_clock: FrozenClock, server
) -> None:
    tenant = make_tenant(db)
    consumer_id, consumer_key = make_consumer(db)
    program = http.put(
        f"/v1/merchants/{tenant.merchant_id}/stored-value/program",
        json={"tiers": [{"pay": 50000, "bonus": 5000}, {"pay": 100000, "bonus": 15000}]},
        headers=tenant.admin,
    )
    assert program.status_code == 200, program.text
    created = http.post(
        "/v1/consumers/me/stored-value/top-ups",
        json={"merchant_id": tenant.merchant_id, "amount": 50000},
        headers=bearer(consumer_key),
    )
    assert created.status_code == 201, created.text
    intent = created.json()
    assert (intent["status"], intent["amount"], intent["bonus"]) == ("pending", 50000, 5000)
    assert http.get("/v1/consumers/me/stored-value", headers=bearer(consumer_key)).json() == []

    secret = webhook_secret(settings.secret_key)
    react(db)  # after the commit, the worker asks the provider for the charge
    report = deliver_pending_events(db, send=http_sender(server.url + WEBHOOK), secret=secret)
    assert (report.completed, report.delivered) == (1, 1)
    react(db)  # and stored value credits the top-up

    again = http.get(
        f"/v1/consumers/me/payment-intents/{intent['id']}", headers=bearer(consumer_key)
    )
    assert again.json()["status"] == "succeeded"
    balances = http.get("/v1/consumers/me/stored-value", headers=bearer(consumer_key)).json()
    assert [(b["merchant_id"], b["balance"]) for b in balances] == [(tenant.merchant_id, 55000)]
    summary = http.get(f"/v1/merchants/{tenant.merchant_id}/balances", headers=tenant.admin).json()
    assert summary["stored_value_escrow"] == 55000
    assert summary["payable"] == -5000  # the bonus is the merchant's cost, not platform money
    with db.transaction() as session:
        assert reconciliation.report(session) == []
    assert consumer_id


def test_forged_stale_altered_and_replayed_webhooks_change_nothing(
    db: Database, http: httpx.Client, settings: Settings, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=50000)
    secret = webhook_secret(settings.secret_key)
    body, headers = _captured_event(db, secret)
    before = _state(db)
    assert before[2] == ["pending"]

    def post(payload: bytes, signature: str | None) -> httpx.Response:
        sent = {"Content-Type": "application/json"}
        if signature is not None:
            sent[SIGNATURE_HEADER] = signature
        return http.post(WEBHOOK, content=payload, headers=sent)

    now = int(frozen_clock.now().timestamp())
    altered = body.replace(b'"amount":50000', b'"amount":90000')
    assert altered != body
    cases = {
        "missing": (body, None, "missing O2O-Signature"),
        "malformed": (body, "v1=abc", "must look like"),
        "wrong secret": (body, sign(body, "not-the-secret", now), "does not match"),
        "old timestamp": (body, sign(body, secret, now - 301), "tolerance is 300 s"),
        "future timestamp": (body, sign(body, secret, now + 301), "tolerance is 300 s"),
        "altered body": (altered, headers[SIGNATURE_HEADER], "does not match"),
    }
    for name, (payload, signature, detail) in cases.items():
        response = post(payload, signature)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"].endswith("/invalid-webhook-signature"), name
        assert detail in problem["detail"], (name, problem["detail"])
        assert _state(db) == before, name

    first = post(body, headers[SIGNATURE_HEADER])
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    after_first = _state(db)
    assert after_first[2] == ["succeeded"]

    # The same event again (a provider retry, or an attacker replaying within tolerance).
    for signature in (headers[SIGNATURE_HEADER], sign(body, secret, now)):
        replay = post(body, signature)
        assert replay.status_code == 200
        assert replay.json()["duplicate"] is True, replay.json()
        assert _state(db) == after_first
    # ... and once the tolerance has passed, the captured signature is worthless.
    frozen_clock.advance(timedelta(minutes=6))
    stale = post(body, headers[SIGNATURE_HEADER])
    assert stale.status_code == 401 and "tolerance" in stale.json()["detail"]


@pytest.mark.parametrize(
    ("behaviour", "reason"), [("fail", "processing_error"), ("decline", "card_declined")]
)
def test_failed_charges_leave_nothing_owed(
    db: Database, frozen_clock: FrozenClock, behaviour: str, reason: str
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    intent_id = top_up(
        db,
        consumer_id=consumer_id,
        merchant_id=tenant.merchant_id,
        amount=50000,
        behaviour=behaviour,
    )
    assert deliver(db).delivered == 1
    with db.transaction() as session:
        intent = session.get(PaymentIntent, intent_id)
        assert intent is not None
        assert (intent.status, intent.failure_reason) == (IntentStatus.FAILED, reason)
        assert intent.ledger_transaction_id is None
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0
        assert reconciliation.report(session) == []


def test_a_charge_that_times_out_expires_after_thirty_minutes(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    intent_id = top_up(
        db,
        consumer_id=consumer_id,
        merchant_id=tenant.merchant_id,
        amount=1000,
        behaviour="timeout",
    )
    assert deliver(db).completed == 0
    frozen_clock.advance(timedelta(minutes=29))
    assert deliver(db).completed == 0
    frozen_clock.advance(timedelta(minutes=2))
    assert deliver(db).delivered == 1
    with db.transaction() as session:
        intent = session.get(PaymentIntent, intent_id)
        assert intent is not None and intent.status is IntentStatus.FAILED
        assert intent.failure_reason == "expired"


def test_undelivered_events_are_retried_with_backoff(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    intent_id = top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=1000)
    react(db)
    down = deliver_pending_events(db, send=lambda body, headers: 500, secret="x")
    assert (down.completed, down.failed) == (1, 1)
    assert deliver(db).delivered == 0  # not yet due again
    frozen_clock.advance(timedelta(seconds=11))
    assert deliver(db).delivered == 1
    with db.transaction() as session:
        intent = session.get(PaymentIntent, intent_id)
        assert intent is not None and intent.status is IntentStatus.SUCCEEDED


def test_event_payload_is_what_providers_send(db: Database, frozen_clock: FrozenClock) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=1000)
    body, headers = _captured_event(db, "s")
    event = json.loads(body)
    assert event["type"] == "charge.succeeded" and event["id"].startswith("evt_")
    assert event["data"]["object"]["amount"] == 1000
    t, v1 = headers[SIGNATURE_HEADER].split(",")
    assert t == f"t={int(frozen_clock.now().timestamp())}" and len(v1) == len("v1=") + 64
