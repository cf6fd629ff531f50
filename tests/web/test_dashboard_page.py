"""The dashboard counts this period against the last, in the merchant's own days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from factories import make_tenant, terminal_principal
from o2oloop import clock
from o2oloop.db import Database
from o2oloop.visits import schemas
from o2oloop.visits import service as visits
from web_kit import make_person, sign_in


def _pay(db: Database, tenant, amount: int, phone: str) -> None:
    with db.transaction() as session:
        visits.record_payment(
            session,
            principal=terminal_principal(tenant),
            data=schemas.PaymentCreate(amount=amount, phone=phone),
            secret_key="test-secret-" + "x" * 32,
        )


def test_the_dashboard_shows_today_against_yesterday(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)  # Asia/Shanghai
    frozen = clock.FrozenClock(datetime(2026, 6, 3, 12, 0, tzinfo=UTC))  # Wed 20:00 local
    with clock.using(frozen):
        frozen.advance(-timedelta(days=1))
        _pay(db, tenant, 5000, "+8613800138001")
        frozen.advance(timedelta(days=1))
        _pay(db, tenant, 3000, "+8613800138001")
        _pay(db, tenant, 4000, "+8613800138002")
        sign_in(http, make_person(db, tenant))

        page = http.get("/console")

    assert page.status_code == 200
    html = page.text
    assert "Today so far" in html and "Visits per day" in html
    assert "CN¥70.00" in html  # today's revenue
    assert "CN¥50.00" in html  # yesterday's, to compare
    assert "Store load by weekday and hour" in html
