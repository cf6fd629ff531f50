"""The members table (filters, paging) and a member's page; another merchant's member is 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from factories import PLATFORM, make_tenant, terminal_principal
from o2oloop import clock
from o2oloop.analytics import service as analytics
from o2oloop.customers.models import Membership
from o2oloop.db import Database
from o2oloop.visits import schemas
from o2oloop.visits import service as visits
from web_kit import make_person, sign_in

SECRET = "test-secret-" + "x" * 32


def _members_with_visits(db: Database, tenant, count: int) -> None:
    frozen = clock.FrozenClock(datetime(2026, 5, 1, 4, 0, tzinfo=UTC))
    with clock.using(frozen):
        for day in range(20):
            with db.transaction() as session:
                for n in range(count):
                    if (day + n) % (n + 2) == 0:
                        visits.record_payment(
                            session,
                            principal=terminal_principal(tenant),
                            data=schemas.PaymentCreate(
                                amount=1000 + 500 * n,
                                phone=f"+86138001380{n:02d}",
                                marketing_consent=n % 2 == 0,
                            ),
                            secret_key=SECRET,
                        )
            frozen.advance(timedelta(days=1))
        with db.transaction() as session:
            analytics.run_for_merchant(session, principal=PLATFORM, merchant_id=tenant.merchant_id)


def test_the_members_table_filters_and_pages(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    _members_with_visits(db, tenant, 8)
    sign_in(http, make_person(db, tenant))

    everyone = http.get("/console/members")
    consenting = http.get("/console/members?consent=yes")
    bad = http.get("/console/members?min_clv=lots")

    assert everyone.status_code == 200 and "8 members match" in everyone.text
    assert "4 members match" in consenting.text
    assert bad.status_code == 422 and 'value="lots"' in bad.text and 'id="e-min_clv"' in bad.text
    for column in ("Segment", "CLV", "P(alive)", "Next visit expected", "Spending", "Consent"):
        assert column in everyone.text


def test_a_member_page_shows_visits_and_another_merchants_member_is_not_found(
    db: Database, http: httpx.Client
) -> None:
    tenant, other = make_tenant(db), make_tenant(db)
    _members_with_visits(db, tenant, 2)
    _members_with_visits(db, other, 2)
    sign_in(http, make_person(db, tenant))
    with db.reading() as session:
        mine = session.scalars(
            select(Membership.id).where(Membership.merchant_id == tenant.merchant_id)
        ).first()
        theirs = session.scalars(
            select(Membership.id).where(Membership.merchant_id == other.merchant_id)
        ).first()

    page = http.get(f"/console/members/{mine}")

    assert page.status_code == 200
    assert "paid at the counter" in page.text and "What we learned" in page.text
    assert http.get(f"/console/members/{theirs}").status_code == 404
