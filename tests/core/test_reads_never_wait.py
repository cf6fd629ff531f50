"""GET routes read in read-only sessions: on SQLite they never wait for the writer lock."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import text

from factories import make_consumer, make_offer, make_tenant
from o2oloop.db import Database


def test_a_get_answers_while_a_long_write_holds_the_writer_lock(
    sqlite_db: Database, settings
) -> None:
    from conftest import LiveServer
    from o2oloop.api import create_app

    tenant = make_tenant(sqlite_db)
    offer_id = make_offer(sqlite_db, tenant)
    _, consumer_key = make_consumer(sqlite_db)
    gets = [
        ("/v1/consumers/me/codes", {"Authorization": f"Bearer {consumer_key}"}),
        (f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}", tenant.admin),
        (f"/v1/merchants/{tenant.merchant_id}/stores", tenant.admin),
        (f"/v1/merchants/{tenant.merchant_id}/redemption-attempts", tenant.admin),
        ("/v1/terminal/me", tenant.terminal),
    ]
    with (
        LiveServer(create_app(settings, sqlite_db)) as live,
        httpx.Client(base_url=live.url, timeout=5) as client,
    ):
        for path, headers in gets:  # warm: connections open, routes compiled
            assert client.get(path, headers=headers).status_code == 200, path
        with sqlite_db.transaction() as session:  # the writers' turn and SQLite's write lock
            session.execute(text("UPDATE merchants SET name = name || ' (renamed)'"))
            for path, headers in gets:
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                waited = time.perf_counter() - started
                assert response.status_code == 200, (path, response.text)
                assert waited < 1.0, (path, waited)  # a writer would wait 30 s for the turn
