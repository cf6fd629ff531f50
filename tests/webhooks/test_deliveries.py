"""From event to a signed request at a real receiver on loopback, on SQLite and PostgreSQL:
verification with `standardwebhooks`, sequence numbers, retries, disabling, replays."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select
from standardwebhooks import Webhook

from factories import make_tenant
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries, endpoints, history, schemas
from o2oloop.webhooks.dispatch import Dispatcher
from o2oloop.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhook_receiver import Answer, Received, receiving
from webhooks_kit import admin_of, redeemed, register, visit


def _publish(db: Database, *events: Any) -> None:
    with db.transaction() as session:
        for event in events:
            deliveries.on_domain_event(session, event)


def _settle(db: Database, dispatcher: Dispatcher, timeout: float = 10) -> None:
    """Send until no delivery is pending (retries included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dispatcher.run_due() == 0:
            with db.transaction() as session:
                pending = session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .join(WebhookEndpoint)
                    .where(
                        WebhookDelivery.state == DeliveryState.PENDING,
                        WebhookEndpoint.enabled.is_(True),
                    )
                )
            if not pending:
                return
            time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def _attempts(db: Database, merchant_id: str, endpoint_id: str) -> list[Any]:
    with db.transaction() as session:
        rows, _ = history.list_attempts(
            session,
            principal=admin_of(merchant_id),
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            cursor=None,
            limit=200,
        )
        return rows


def _endpoint(db: Database, endpoint_id: str) -> WebhookEndpoint:
    with db.transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


def test_a_redeemed_code_reaches_the_receiver_signed_and_verifiable(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    with receiving() as receiver:
        endpoint_id, secret = register(
            db, hook_settings, tenant.merchant_id, receiver.url + "/hook"
        )
        event = redeemed(tenant.merchant_id, code_id="cod_1")
        _publish(db, event)
        _settle(db, dispatcher)
        (got,) = receiver.wait_for(1)
    body = Webhook(secret).verify(got.body.decode(), got.headers)
    assert body["type"] == "code.redeemed"
    assert body["sequence"] == 1 and body["event_id"] == event.event_id
    assert body["data"]["code_id"] == "cod_1"
    assert body["data"]["merchant_id"] == tenant.merchant_id
    assert body["data"]["bill_amount"] == 12_800
    assert body["timestamp"].endswith("Z")
    assert got.headers["webhook-id"].startswith("msg_")
    (attempt,) = _attempts(db, tenant.merchant_id, endpoint_id)
    assert attempt.succeeded and attempt.status == 200 and attempt.response_excerpt == "ok"
    assert attempt.delivery_id == got.headers["webhook-id"] and attempt.latency_ms >= 0


def test_each_merchant_numbers_its_deliveries_in_sequence(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    one, two = make_tenant(db), make_tenant(db)
    with receiving() as receiver:
        register(db, hook_settings, one.merchant_id, receiver.url + "/a")
        register(db, hook_settings, one.merchant_id, receiver.url + "/b")
        register(db, hook_settings, two.merchant_id, receiver.url + "/c")
        for n in range(3):
            _publish(db, redeemed(one.merchant_id, code_id=f"c{n}"))
        _publish(db, redeemed(two.merchant_id, code_id="x"))
        _settle(db, dispatcher)
        received = receiver.wait_for(7)
    seen: dict[str, list[tuple[int, str]]] = {}
    for got in received:
        document = json.loads(got.body)
        seen.setdefault(got.path, []).append((document["sequence"], document["data"]["code_id"]))
    assert sorted(seen["/a"]) == [(1, "c0"), (2, "c1"), (3, "c2")]
    assert sorted(seen["/b"]) == sorted(seen["/a"])  # one number per event, every endpoint
    assert seen["/c"] == [(1, "x")]
    assert len({got.headers["webhook-id"] for got in received}) == 7


def test_queueing_is_idempotent_and_follows_subscriptions(
    db: Database, hook_settings: Settings
) -> None:
    tenant, other = make_tenant(db), make_tenant(db)
    subscribed, _ = register(db, hook_settings, tenant.merchant_id, "http://127.0.0.1:9/a")
    visits, _ = register(
        db, hook_settings, tenant.merchant_id, "http://127.0.0.1:9/b", ("visit.recorded",)
    )
    event = redeemed(tenant.merchant_id, code_id="c")
    _publish(db, event)
    _publish(db, event)  # the worker runs a handler again after a crash: nothing new
    _publish(db, visit(other.merchant_id))
    with db.transaction() as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert [(r.endpoint_id, r.event_type) for r in rows] == [(subscribed, "code.redeemed")]
    assert visits not in {r.endpoint_id for r in rows}


def test_failures_are_retried_with_the_same_webhook_id_until_delivered(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    answers = iter([Answer(500, b"boom"), Answer(503, b"busy"), Answer(200, b"fine")])
    with receiving(lambda _r: next(answers)) as receiver:
        endpoint_id, secret = register(db, hook_settings, tenant.merchant_id, receiver.url)
        _publish(db, redeemed(tenant.merchant_id, code_id="c"))
        _settle(db, dispatcher)
        received = receiver.wait_for(3)
    assert len({got.headers["webhook-id"] for got in received}) == 1
    assert len({got.body for got in received}) == 1
    for got in received:
        Webhook(secret).verify(got.body.decode(), got.headers)
    attempts = _attempts(db, tenant.merchant_id, endpoint_id)
    assert [(a.status, a.succeeded, a.error) for a in attempts] == [
        (500, False, "answered 500"),
        (503, False, "answered 503"),
        (200, True, None),
    ]
    assert [a.response_excerpt for a in attempts] == ["boom", "busy", "fine"]
    endpoint = _endpoint(db, endpoint_id)
    assert endpoint.enabled and endpoint.consecutive_failures == 0
    assert endpoint.failing_since is None


def test_a_delivery_fails_when_the_schedule_runs_out_and_a_replay_sends_it_again(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    failing = {"on": True}

    def policy(_r: Received) -> Answer:
        return Answer(500) if failing["on"] else Answer(204, b"")

    with receiving(policy) as receiver:
        endpoint_id, _ = register(db, hook_settings, tenant.merchant_id, receiver.url)
        _publish(db, redeemed(tenant.merchant_id, code_id="c"))
        _settle(db, dispatcher)
        assert len(receiver.received) == len(hook_settings.webhooks_retry_schedule)
        with db.transaction() as session:
            (delivery,) = session.scalars(select(WebhookDelivery)).all()
        assert delivery.state is DeliveryState.FAILED and delivery.next_attempt_at is None

        failing["on"] = False
        with db.transaction() as session:
            history.replay_delivery(
                session,
                principal=admin_of(tenant.merchant_id),
                merchant_id=tenant.merchant_id,
                endpoint_id=endpoint_id,
                delivery_id=delivery.id,
            )
        _settle(db, dispatcher)
        replayed = receiver.wait_for(5)[-1]
    assert replayed.headers["webhook-id"] == delivery.id
    with db.transaction() as session:
        after = session.get(WebhookDelivery, delivery.id)
        assert after is not None and after.state is DeliveryState.DELIVERED
        assert after.attempts == 5


def test_410_gone_disables_the_endpoint_at_once(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    with receiving(lambda _r: Answer(410, b"gone")) as receiver:
        endpoint_id, _ = register(db, hook_settings, tenant.merchant_id, receiver.url)
        _publish(db, redeemed(tenant.merchant_id, code_id="c"))
        _settle(db, dispatcher)
        _publish(db, redeemed(tenant.merchant_id, code_id="d"))
        _settle(db, dispatcher)
        assert len(receiver.received) == 1
    endpoint = _endpoint(db, endpoint_id)
    assert not endpoint.enabled and "410" in (endpoint.disabled_reason or "")


def test_repeated_failures_disable_the_endpoint(db: Database, hook_settings: Settings) -> None:
    strict = hook_settings.model_copy(update={"webhooks_disable_after_failures": 3})
    tenant = make_tenant(db)
    dispatcher = Dispatcher(db, strict, concurrency=2)
    try:
        with receiving(lambda _r: Answer(500)) as receiver:
            endpoint_id, _ = register(db, strict, tenant.merchant_id, receiver.url)
            _publish(db, redeemed(tenant.merchant_id, code_id="c"))
            _settle(db, dispatcher)
            assert len(receiver.received) == 3
    finally:
        dispatcher.close()
    endpoint = _endpoint(db, endpoint_id)
    assert not endpoint.enabled and endpoint.consecutive_failures == 3
    assert "3 failed attempts in a row" in (endpoint.disabled_reason or "")


def test_after_a_rotation_both_secrets_verify_the_same_delivery(
    db: Database, hook_settings: Settings, dispatcher: Dispatcher
) -> None:
    tenant = make_tenant(db)
    with receiving() as receiver:
        endpoint_id, old = register(db, hook_settings, tenant.merchant_id, receiver.url)
        with db.transaction() as session:
            _, new = endpoints.rotate_secret(
                session,
                principal=admin_of(tenant.merchant_id),
                merchant_id=tenant.merchant_id,
                endpoint_id=endpoint_id,
                data=schemas.SecretRotation(overlap_hours=24),
                settings=hook_settings,
            )
        _publish(db, redeemed(tenant.merchant_id, code_id="c"))
        _settle(db, dispatcher)
        (got,) = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body.decode(), got.headers)
    Webhook(new).verify(got.body.decode(), got.headers)


def test_a_hanging_receiver_holds_one_delivery_not_the_worker(
    db: Database, hook_settings: Settings
) -> None:
    quick = hook_settings.model_copy(update={"webhooks_timeout_seconds": 1.0})
    tenant, other = make_tenant(db), make_tenant(db)
    dispatcher = Dispatcher(db, quick, concurrency=4)
    try:
        with receiving(lambda _r: Answer(hang=30)) as hung, receiving() as fine:
            hung_id, _ = register(db, quick, tenant.merchant_id, hung.url)
            register(db, quick, other.merchant_id, fine.url)
            _publish(
                db,
                redeemed(tenant.merchant_id, code_id="c"),
                redeemed(other.merchant_id, code_id="d"),
            )
            started = time.monotonic()
            dispatcher.run_due()
            elapsed = time.monotonic() - started
            (answered,) = fine.wait_for(1)
    finally:
        dispatcher.close()
    assert elapsed < 3
    assert answered.at - started < 0.9  # not queued behind the hanging one
    (attempt,) = _attempts(db, tenant.merchant_id, hung_id)
    assert not attempt.succeeded and "no answer within 1 s" in (attempt.error or "")


def test_delivery_to_loopback_is_refused_when_the_operator_does_not_allow_it(
    db: Database, hook_settings: Settings
) -> None:
    guarded = hook_settings.model_copy(update={"webhooks_allow_private": False})
    tenant = make_tenant(db)
    dispatcher = Dispatcher(db, guarded, concurrency=1)
    try:
        with receiving() as receiver:
            # Registered while allowed (or a public name that now resolves to loopback).
            endpoint_id, _ = register(db, hook_settings, tenant.merchant_id, receiver.url)
            _publish(db, redeemed(tenant.merchant_id, code_id="c"))
            dispatcher.run_due()
            assert receiver.received == []
    finally:
        dispatcher.close()
    (attempt,) = _attempts(db, tenant.merchant_id, endpoint_id)
    assert not attempt.succeeded and "public addresses only" in (attempt.error or "")
