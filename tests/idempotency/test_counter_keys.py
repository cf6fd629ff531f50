"""Idempotency-Key at the counter: the answer is stored with the redemption it answers for."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from factories import bearer, consumer_principal, make_consumer, make_offer, make_tenant
from o2oloop.codes import service
from o2oloop.codes.models import Redemption, RedemptionAttempt
from o2oloop.db import Database
from o2oloop.idempotency.models import IdempotencyRecord


def _code(db: Database, tenant, settings) -> str:
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    keys = service.Keys.from_secret(settings.secret_key)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=keys
        )
        return keys.code_text(code.id)


def _count(db: Database, table) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_a_retry_gets_the_stored_redemption(db: Database, http: httpx.Client, settings) -> None:
    tenant = make_tenant(db)
    code = _code(db, tenant, settings)
    headers = tenant.terminal | {"Idempotency-Key": "till-7-0001"}
    body = {"code": code, "bill_amount": 5000}
    first = http.post("/v1/terminal/redemptions", json=body, headers=headers)
    again = http.post("/v1/terminal/redemptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(db, Redemption) == 1
    assert _count(db, RedemptionAttempt) == 1  # the retry ran nothing, not even a refusal
    assert _count(db, IdempotencyRecord) == 1


def test_a_refusal_is_stored_with_its_log_entry(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    headers = tenant.terminal | {"Idempotency-Key": "till-7-0002"}
    body = {"code": "AAAA-BBBB-CCCC-DDDD-EEEE"}
    first = http.post("/v1/terminal/redemptions", json=body, headers=headers)
    again = http.post("/v1/terminal/redemptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.content == first.content
    assert _count(db, RedemptionAttempt) == 1
    other = http.post("/v1/terminal/redemptions", json={"code": "X"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")


def _race(server, headers: dict[str, str], codes: list[str]) -> list[httpx.Response]:
    """Each code redeemed by a client of its own, all let go at once, with these headers."""
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(len(codes))

    def attempt(code: str) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            barrier.wait()
            answers.append(
                client.post(
                    "/v1/terminal/redemptions",
                    json={"code": code, "bill_amount": 5000},
                    headers=headers,
                )
            )

    threads = [threading.Thread(target=attempt, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_retries_of_one_redemption_redeem_once(db: Database, server, settings) -> None:
    tenant = make_tenant(db)
    code = _code(db, tenant, settings)
    answers = _race(server, tenant.terminal | {"Idempotency-Key": "till-7-rush"}, [code] * 12)
    assert [a.status_code for a in answers] == [201] * 12
    assert len({a.content for a in answers}) == 1
    assert _count(db, Redemption) == 1
    accepted = _count(db, RedemptionAttempt)
    assert accepted == 1  # the losers' refusals went with their rolled-back work


def test_one_key_racing_with_different_codes_redeems_only_one(
    db: Database, server, settings
) -> None:
    """A key reused for other codes at once: whichever stores the key first redeems its
    code; every other one's change goes with its failed insert of the key, and it is told
    the key was used for another request."""
    tenant = make_tenant(db)
    codes = [_code(db, tenant, settings) for _ in range(6)]
    answers = _race(server, tenant.terminal | {"Idempotency-Key": "till-7-reused"}, codes)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [422] * (len(codes) - 1)
    assert all(
        a.json()["type"].endswith("idempotency-key-reused") for a in answers if a.status_code == 422
    )
    assert _count(db, Redemption) == 1
    assert _count(db, RedemptionAttempt) == 1
    assert _count(db, IdempotencyRecord) == 1


def test_an_expired_key_at_the_counter_redeems_afresh(
    db: Database, http: httpx.Client, settings, frozen_clock
) -> None:
    """The key's expired row is replaced (not inserted anew) by the next redemption with it."""
    tenant = make_tenant(db)
    first_code, second_code = _code(db, tenant, settings), _code(db, tenant, settings)
    headers = tenant.terminal | {"Idempotency-Key": "till-7-old"}
    first = http.post(
        "/v1/terminal/redemptions", json={"code": first_code, "bill_amount": 5000}, headers=headers
    )
    frozen_clock.advance(timedelta(hours=25))
    later = http.post(
        "/v1/terminal/redemptions", json={"code": second_code, "bill_amount": 5000}, headers=headers
    )
    assert first.status_code == later.status_code == 201
    assert later.json()["redemption"]["id"] != first.json()["redemption"]["id"]
    assert _count(db, Redemption) == 2
    assert _count(db, IdempotencyRecord) == 1
    again = http.post(
        "/v1/terminal/redemptions", json={"code": second_code, "bill_amount": 5000}, headers=headers
    )
    assert again.content == later.content


def test_concurrent_retries_of_a_claim_claim_once(db: Database, server) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    _, consumer_key = make_consumer(db)
    headers = bearer(consumer_key) | {"Idempotency-Key": "app-claim-1"}
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            barrier.wait()
            answers.append(client.post(f"/v1/offers/{offer_id}/claim", headers=headers))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json()["id"] for a in answers}) == 1
