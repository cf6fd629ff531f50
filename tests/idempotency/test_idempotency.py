"""Idempotency-Key semantics shared by every POST."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from factories import bearer, make_tenant, platform_admin_key
from o2oloop.db import Database
from o2oloop.merchants.models import Store


def _store_count(db: Database, merchant_id: str) -> int:
    with db.transaction() as session:
        return session.scalar(
            select(func.count()).select_from(Store).where(Store.merchant_id == merchant_id)
        )


def test_retry_replays_the_identical_first_response(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    headers = tenant.admin | {"Idempotency-Key": "create-branch-42"}
    payload = {"name": "Branch 42", "latitude": 31.2, "longitude": 121.4}
    first = http.post(f"/v1/merchants/{tenant.merchant_id}/stores", json=payload, headers=headers)
    second = http.post(f"/v1/merchants/{tenant.merchant_id}/stores", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers.get("idempotent-replayed") == "true"
    assert _store_count(db, tenant.merchant_id) == 2  # the factory's store and this one


def test_errors_are_replayed_too(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    headers = tenant.staff | {"Idempotency-Key": "staff-tries"}
    url = f"/v1/merchants/{tenant.merchant_id}/stores"
    payload = {"name": "x", "latitude": 1, "longitude": 1}
    first = http.post(url, json=payload, headers=headers)
    second = http.post(url, json=payload, headers=headers)
    assert first.status_code == second.status_code == 403
    assert first.content == second.content


def test_same_key_with_other_parameters_is_rejected(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    headers = tenant.admin | {"Idempotency-Key": "k-1"}
    url = f"/v1/merchants/{tenant.merchant_id}/stores"
    ok = http.post(url, json={"name": "A", "latitude": 1, "longitude": 1}, headers=headers)
    assert ok.status_code == 201
    other = http.post(url, json={"name": "B", "latitude": 1, "longitude": 1}, headers=headers)
    assert other.status_code == 422
    assert "different" in other.json()["detail"]
    assert _store_count(db, tenant.merchant_id) == 2


def test_keys_are_scoped_per_credential(db: Database, http: httpx.Client) -> None:
    one, two = make_tenant(db), make_tenant(db)
    payload = {"name": "Same key", "latitude": 1, "longitude": 1}
    for tenant in (one, two):
        response = http.post(
            f"/v1/merchants/{tenant.merchant_id}/stores",
            json=payload,
            headers=tenant.admin | {"Idempotency-Key": "shared-key"},
        )
        assert response.status_code == 201
        assert response.json()["merchant_id"] == tenant.merchant_id


def test_malformed_key_is_a_clear_error(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    response = http.post(
        f"/v1/merchants/{tenant.merchant_id}/stores",
        json={"name": "A", "latitude": 1, "longitude": 1},
        headers=tenant.admin | {"Idempotency-Key": "x" * 300},
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]


def test_record_expires_after_ttl(db: Database, http: httpx.Client, frozen_clock) -> None:
    admin = bearer(platform_admin_key(db))
    headers = admin | {"Idempotency-Key": "onboard"}
    payload = {"name": "Gym", "category": "fitness"}
    first = http.post("/v1/merchants", json=payload, headers=headers)
    frozen_clock.advance(timedelta(hours=23))
    assert http.post("/v1/merchants", json=payload, headers=headers).content == first.content
    frozen_clock.advance(timedelta(hours=2))
    later = http.post("/v1/merchants", json=payload, headers=headers)
    assert later.status_code == 201
    assert later.json()["merchant"]["id"] != first.json()["merchant"]["id"]


@pytest.mark.postgres
def test_concurrent_retries_execute_once(pg_db: Database, settings) -> None:
    from conftest import LiveServer
    from o2oloop.api import create_app

    tenant = make_tenant(pg_db)
    url_path = f"/v1/merchants/{tenant.merchant_id}/stores"
    payload = {"name": "Rush", "latitude": 1, "longitude": 1}
    headers = tenant.admin | {"Idempotency-Key": "rush-hour"}
    statuses: list[int] = []
    bodies: list[bytes] = []
    barrier = threading.Barrier(16)
    with LiveServer(create_app(settings, pg_db)) as live:

        def attempt() -> None:
            with httpx.Client(base_url=live.url, timeout=30) as client:
                barrier.wait()
                response = client.post(url_path, json=payload, headers=headers)
                statuses.append(response.status_code)
                bodies.append(response.content)

        threads = [threading.Thread(target=attempt) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert _store_count(pg_db, tenant.merchant_id) == 2  # exactly one execution
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    created = {body for status, body in zip(statuses, bodies, strict=True) if status == 201}
    assert len(created) == 1  # every success is the same stored response


@pytest.mark.postgres
def test_a_retry_while_the_first_still_runs_gets_409_with_retry_after_in_bounded_time(
    pg_db: Database, settings
) -> None:
    """The first execution waits on a lock someone else holds; a retry with its key neither
    runs again nor waits as long as the first does: 409 with Retry-After within seconds.
    Once the first has answered, a retry gets that answer."""
    from conftest import LiveServer
    from o2oloop.api import create_app

    tenant = make_tenant(pg_db)
    url = f"/v1/merchants/{tenant.merchant_id}/stores"
    payload = {"name": "Slow", "latitude": 1, "longitude": 1}
    headers = tenant.admin | {"Idempotency-Key": "slow-first"}
    first: list[httpx.Response] = []
    with LiveServer(create_app(settings, pg_db)) as live, pg_db.engine.connect() as blocker:
        blocker.execute(  # the store's insert needs a share lock on its merchant's row
            text("SELECT 1 FROM merchants WHERE id = :id FOR UPDATE"), {"id": tenant.merchant_id}
        )

        def run_first() -> None:
            first.append(httpx.post(live.url + url, json=payload, headers=headers, timeout=60))

        thread = threading.Thread(target=run_first)
        thread.start()
        time.sleep(0.5)  # the first has claimed the key and waits for the lock
        started = time.perf_counter()
        retry = httpx.post(live.url + url, json=payload, headers=headers, timeout=15)
        waited = time.perf_counter() - started
        assert retry.status_code == 409, retry.text
        assert retry.headers["Retry-After"] == "1"
        assert waited < 10, waited
        assert not first  # the first is still running
        blocker.rollback()
        thread.join(timeout=30)
        again = httpx.post(live.url + url, json=payload, headers=headers, timeout=60)
    assert first[0].status_code == 201
    assert again.status_code == 201 and again.content == first[0].content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _store_count(pg_db, tenant.merchant_id) == 2  # the tenant's own and this one
