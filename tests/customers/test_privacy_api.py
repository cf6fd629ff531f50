"""A consumer exports all their data and has it erased; visits stay as anonymous facts."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from factories import bearer, make_consumer, make_tenant
from o2oloop import clock
from o2oloop.customers.models import ConsentEvent, Consumer, Membership
from o2oloop.db import Database
from o2oloop.visits import service as visits
from o2oloop.visits.models import Visit, VisitSource


def _visit_as(db: Database, tenant, consumer_id: str, amount: int) -> None:
    """A visit the codes domain would record when this consumer redeems at the store."""
    with db.transaction() as session:
        membership = session.scalar(
            select(Membership).where(
                Membership.merchant_id == tenant.merchant_id, Membership.consumer_id == consumer_id
            )
        )
        visits.add_visit(
            session,
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            terminal_id=tenant.terminal_id,
            membership=membership,
            amount=amount,
            currency="CNY",
            occurred_at=clock.now(),
            source=VisitSource.REDEMPTION,
            code="K7QX-2M9P",
        )


def test_export_holds_everything_and_erase_keeps_only_anonymous_visits(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    consumer_id, token = make_consumer(db, "Lin")
    me = bearer(token)
    http.post(
        "/v1/consumers/me/consents",
        json={"merchant_id": tenant.merchant_id, "marketing_consent": True},
        headers=me,
    )
    _visit_as(db, tenant, consumer_id, 3_200)
    _visit_as(db, tenant, consumer_id, 1_800)

    export = http.get("/v1/consumers/me/export", headers=me)
    assert export.status_code == 200, export.text
    data = export.json()
    assert data["consumer"]["id"] == consumer_id
    assert data["consumer"]["display_name"] == "Lin"
    assert [m["merchant_id"] for m in data["memberships"]] == [tenant.merchant_id]
    assert data["memberships"][0]["visit_count"] == 2
    assert [e["marketing_consent"] for e in data["consent_events"]] == [True]
    assert sorted(v["amount"] for v in data["visits"]) == [1_800, 3_200]
    assert all(v["store_id"] == tenant.store_id for v in data["visits"])
    assert [k["role"] for k in data["api_keys"]] == ["consumer"]

    erased = http.post("/v1/consumers/me/erase", headers=me)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    counts = ("memberships_deleted", "visits_anonymised", "consent_events_deleted")
    assert tuple(receipt[name] for name in counts) == (1, 2, 1)
    # The consumer's keys stop working.
    assert http.get("/v1/consumers/me", headers=me).status_code == 401
    # The merchant keeps the visit facts, with nobody attached.
    listed = http.get(f"/v1/merchants/{tenant.merchant_id}/visits", headers=tenant.admin).json()
    assert sorted(v["amount"] for v in listed["data"]) == [1_800, 3_200]
    assert all(v["member_id"] is None for v in listed["data"])
    members = http.get(f"/v1/merchants/{tenant.merchant_id}/members", headers=tenant.admin).json()
    assert members["data"] == []
    with db.transaction() as session:
        consumer = session.get(Consumer, consumer_id)
        assert consumer is not None and consumer.erased_at is not None
        assert (consumer.display_name, consumer.phone_hash, consumer.phone_e164) == ("", None, None)
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
        assert (
            session.scalar(
                select(func.count()).select_from(Visit).where(Visit.consumer_id.is_not(None))
            )
            == 0
        )


def test_a_phone_known_at_pos_is_forgotten_on_erasure(db: Database, http: httpx.Client) -> None:
    """Erasing removes the phone hash, so the number is a stranger at the next payment."""
    from o2oloop.auth.models import Role
    from o2oloop.auth.principal import Principal
    from o2oloop.privacy import service as privacy

    tenant = make_tenant(db)
    paid = http.post(
        "/v1/terminal/payments",
        json={"amount": 1_000, "phone": "13800138020", "marketing_consent": True},
        headers=tenant.terminal,
    ).json()
    with db.transaction() as session:
        consumer_id = session.get(Membership, paid["member"]["id"]).consumer_id
        consumer = session.get(Consumer, consumer_id)
        assert consumer.phone_e164 == "+8613800138020"  # consented: kept
        privacy.erase_consumer(
            session, principal=Principal(key_id="t", role=Role.CONSUMER, consumer_id=consumer_id)
        )
    again = http.post(
        "/v1/terminal/payments",
        json={"amount": 1_000, "phone": "13800138020"},
        headers=tenant.terminal,
    ).json()
    assert again["member"]["new_member"] is True
    assert again["member"]["id"] != paid["member"]["id"]


def test_only_consumers_export_and_erase(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    for headers in (tenant.admin, tenant.terminal):
        assert http.get("/v1/consumers/me/export", headers=headers).status_code == 403
        assert http.post("/v1/consumers/me/erase", headers=headers).status_code == 403
