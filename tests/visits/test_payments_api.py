"""POS payments over real HTTP, on SQLite and PostgreSQL: validation, members, idempotency."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from factories import make_tenant
from o2oloop.clock import FrozenClock
from o2oloop.db import Database

PAY = "/v1/terminal/payments"


def visits_of(http: httpx.Client, tenant, **params) -> list[dict]:
    response = http.get(
        f"/v1/merchants/{tenant.merchant_id}/visits", params=params, headers=tenant.admin
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_payment_becomes_a_visit_of_the_terminals_store(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    response = http.post(
        PAY,
        json={
            "amount": 4_800,
            "items": [{"name": "Beef noodles", "quantity": 2, "amount": 4_800}],
            "code": "K7QX-2M9P",
        },
        headers=tenant.terminal,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    visit = body["visit"]
    assert body["member"] is None
    assert visit["store_id"] == tenant.store_id
    assert visit["terminal_id"] == tenant.terminal_id
    assert visit["merchant_id"] == tenant.merchant_id
    assert (visit["amount"], visit["currency"], visit["source"]) == (4_800, "CNY", "pos")
    assert visit["occurred_at"].startswith("2026-06-01T12:00:00")
    assert visit["code"] == "K7QX-2M9P"
    assert visit["redemption_id"] is None
    assert visit["items"] == [{"name": "Beef noodles", "quantity": 2, "amount": 4_800}]
    assert [v["id"] for v in visits_of(http, tenant)] == [visit["id"]]


def test_a_phone_enrolls_a_member_with_the_cashiers_consent(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    first = http.post(
        PAY,
        json={"amount": 2_000, "phone": "138 0013 8000", "marketing_consent": True},
        headers=tenant.terminal,
    ).json()
    assert first["member"]["new_member"] is True
    assert first["member"]["marketing_consent"] is True
    assert first["member"]["visit_count"] == 1
    second = http.post(
        PAY, json={"amount": 3_000, "phone": "+86 138-0013-8000"}, headers=tenant.terminal
    ).json()
    assert second["member"]["id"] == first["member"]["id"]
    assert second["member"]["new_member"] is False
    assert second["member"]["marketing_consent"] is True  # absent leaves consent unchanged
    assert second["member"]["visit_count"] == 2
    member = http.get(
        f"/v1/merchants/{tenant.merchant_id}/members/{first['member']['id']}",
        headers=tenant.staff,
    ).json()
    assert member["member"]["source"] == "pos"
    assert member["member"]["phone"] == "+8613800138000"  # consented, so visible
    assert member["member"]["total_spent"] == 5_000
    assert member["member"]["consent_recorded_by"] == f"terminal:{tenant.terminal_id}"
    assert [v["amount"] for v in member["visits"]] == [3_000, 2_000]


def test_without_consent_the_merchant_never_sees_the_number(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    paid = http.post(
        PAY, json={"amount": 1_000, "phone": "13800138001"}, headers=tenant.terminal
    ).json()
    member = http.get(
        f"/v1/merchants/{tenant.merchant_id}/members/{paid['member']['id']}", headers=tenant.admin
    ).json()["member"]
    assert member["phone"] is None
    assert member["marketing_consent"] is False
    # Found again by the number all the same (looked up by its keyed hash).
    found = http.get(
        f"/v1/merchants/{tenant.merchant_id}/members",
        params={"phone": "+8613800138001"},
        headers=tenant.admin,
    ).json()["data"]
    assert [m["id"] for m in found] == [paid["member"]["id"]]


def test_a_known_phone_is_the_same_consumer_at_every_merchant(
    db: Database, http: httpx.Client
) -> None:
    from sqlalchemy import select

    from o2oloop.customers.models import Consumer, Membership

    cafe, gym = make_tenant(db), make_tenant(db)
    at_cafe = http.post(
        PAY, json={"amount": 1_800, "phone": "13912345678"}, headers=cafe.terminal
    ).json()
    at_gym = http.post(
        PAY, json={"amount": 9_900, "phone": "+86 139 1234 5678"}, headers=gym.terminal
    ).json()
    assert at_cafe["member"]["id"] != at_gym["member"]["id"]
    with db.transaction() as session:
        owners = session.scalars(
            select(Membership.consumer_id).where(
                Membership.id.in_([at_cafe["member"]["id"], at_gym["member"]["id"]])
            )
        ).all()
        assert len(owners) == 2 and owners[0] == owners[1]
        consumer = session.get(Consumer, owners[0])
        assert consumer is not None
        assert consumer.phone_e164 is None  # no consent anywhere: plain number not kept
        assert consumer.phone_hash is not None and "13912345678" not in consumer.phone_hash


def test_a_member_card_finds_its_member(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    enrolled = http.post(
        PAY,
        json={"amount": 1_000, "phone": "13800138002", "member_card": "VIP-0001"},
        headers=tenant.terminal,
    ).json()
    by_card = http.post(
        PAY, json={"amount": 1_500, "member_card": "VIP-0001"}, headers=tenant.terminal
    ).json()
    assert by_card["member"]["id"] == enrolled["member"]["id"]
    assert by_card["member"]["visit_count"] == 2
    card_only = http.post(
        PAY, json={"amount": 700, "member_card": "VIP-0002"}, headers=tenant.terminal
    ).json()
    assert card_only["member"]["new_member"] is True
    taken = http.post(
        PAY,
        json={"amount": 700, "phone": "13800138003", "member_card": "VIP-0001"},
        headers=tenant.terminal,
    )
    assert taken.status_code == 409
    assert len(visits_of(http, tenant)) == 3


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"amount": -100}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({}, "amount"),
        ({"amount": 100, "phone": "12345"}, "phone"),
        ({"amount": 100, "phone": "not a phone"}, "phone"),
        ({"amount": 100, "currency": "USD"}, "currency"),
        ({"amount": 100, "occurred_at": "2026-06-01T12:30:00Z"}, "future"),
        ({"amount": 100, "occurred_at": "2026-04-01T12:00:00Z"}, "30 days"),
        ({"amount": 100, "occurred_at": "2026-06-01T12:00:00"}, "occurred_at"),
        ({"amount": 100, "marketing_consent": True}, "marketing_consent"),
        ({"amount": 100, "items": [{"name": "", "amount": 1}]}, "items"),
        ({"amount": 100, "items": [{"name": "Tea", "quantity": 0, "amount": 1}]}, "items"),
        ({"amount": 100, "member_card": "no spaces"}, "member_card"),
    ],
)
def test_invalid_payments_get_422_and_record_nothing(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock, body: dict, where: str
) -> None:
    tenant = make_tenant(db)
    response = http.post(PAY, json=body, headers=tenant.terminal)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert where in problem["detail"] or where in str(problem.get("errors", "")), problem
    assert visits_of(http, tenant) == []
    members = http.get(f"/v1/merchants/{tenant.merchant_id}/members", headers=tenant.admin)
    assert members.json()["data"] == []


def test_payment_times_a_little_ahead_or_back_are_accepted(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    now = frozen_clock.now()
    for offset in (timedelta(minutes=4), timedelta(days=-29), timedelta(hours=-8)):
        at = (now + offset).isoformat()
        response = http.post(PAY, json={"amount": 100, "occurred_at": at}, headers=tenant.terminal)
        assert response.status_code == 201, response.text
    # A time in another zone is the same instant, stored in UTC.
    eastern = http.post(
        PAY,
        json={"amount": 100, "occurred_at": "2026-06-01T19:00:00+08:00"},
        headers=tenant.terminal,
    ).json()
    assert eastern["visit"]["occurred_at"].startswith("2026-06-01T11:00:00")


def test_only_terminal_keys_record_payments(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    for headers in (tenant.admin, tenant.staff):
        response = http.post(PAY, json={"amount": 100}, headers=headers)
        assert response.status_code == 403
    assert http.post(PAY, json={"amount": 100}).status_code == 401
    assert visits_of(http, tenant) == []


def test_a_retried_payment_records_one_visit(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    body = {"amount": 2_600, "phone": "13800138004", "marketing_consent": True}
    headers = {**tenant.terminal, "Idempotency-Key": "pos-receipt-000123"}
    first = http.post(PAY, json=body, headers=headers)
    again = http.post(PAY, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert len(visits_of(http, tenant)) == 1
    members = http.get(f"/v1/merchants/{tenant.merchant_id}/members", headers=tenant.admin)
    assert [m["visit_count"] for m in members.json()["data"]] == [1]
    changed = http.post(PAY, json={**body, "amount": 2_700}, headers=headers)
    assert changed.status_code == 422
    assert len(visits_of(http, tenant)) == 1


def test_visit_list_filters_and_pages(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    second_store = http.post(
        f"/v1/merchants/{tenant.merchant_id}/stores",
        json={"name": "Second", "latitude": 31.2, "longitude": 121.4},
        headers=tenant.admin,
    ).json()["id"]
    now = frozen_clock.now()
    for day in range(5):
        at = (now - timedelta(days=day)).isoformat()
        assert (
            http.post(
                PAY, json={"amount": 100 + day, "occurred_at": at}, headers=tenant.terminal
            ).status_code
            == 201
        )
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get(
            f"/v1/merchants/{tenant.merchant_id}/visits", params=params, headers=tenant.staff
        ).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(v["amount"] for v in seen) == [100, 101, 102, 103, 104]
    since = (now - timedelta(days=2, hours=1)).isoformat()
    assert sorted(v["amount"] for v in visits_of(http, tenant, since=since)) == [100, 101, 102]
    until = (now - timedelta(days=3)).isoformat()
    assert sorted(v["amount"] for v in visits_of(http, tenant, until=until)) == [104]
    assert visits_of(http, tenant, store_id=second_store) == []
    assert len(visits_of(http, tenant, store_id=tenant.store_id)) == 5
    bad = http.get(
        f"/v1/merchants/{tenant.merchant_id}/visits",
        params={"since": "2026-06-01T00:00:00"},
        headers=tenant.staff,
    )
    assert bad.status_code == 422


def test_a_payment_completing_a_redemption_is_the_claimers_visit(
    db: Database, http: httpx.Client
) -> None:
    from factories import bearer, make_consumer, make_offer

    tenant, other = make_tenant(db), make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, consumer_key = make_consumer(db)
    claimed = http.post(f"/v1/offers/{offer_id}/claim", headers=bearer(consumer_key)).json()
    redeemed = http.post(
        "/v1/terminal/redemptions",
        json={"code": claimed["code"], "bill_amount": 8_800},
        headers=tenant.terminal,
    ).json()
    redemption_id = redeemed["redemption"]["id"]
    body = {"amount": 7_800, "code": claimed["code"], "redemption_id": redemption_id}
    # Another merchant's terminal cannot claim the redemption.
    assert http.post(PAY, json=body, headers=other.terminal).status_code == 422
    paid = http.post(PAY, json=body, headers=tenant.terminal)
    assert paid.status_code == 201, paid.text
    visit = paid.json()["visit"]
    assert visit["redemption_id"] == redemption_id
    member = paid.json()["member"]
    assert member is not None and member["new_member"] is True
    detail = http.get(
        f"/v1/merchants/{tenant.merchant_id}/members/{member['id']}", headers=tenant.admin
    ).json()
    assert detail["member"]["source"] == "claim"
    # The consumer sees the visit in their own export.
    export = http.get("/v1/consumers/me/export", headers=bearer(consumer_key)).json()
    assert [v["visit_id"] for v in export["visits"]] == [visit["id"]]
    assert export["consumer"]["id"] == consumer_id
    # One visit per redemption.
    assert http.post(PAY, json=body, headers=tenant.terminal).status_code == 409
