"""Members, consent and tenancy over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from factories import bearer, make_consumer, make_member, make_tenant
from o2oloop.db import Database

PAY = "/v1/terminal/payments"


def test_merchant_b_never_sees_merchant_as_members_or_visits(
    db: Database, http: httpx.Client
) -> None:
    a, b = make_tenant(db), make_tenant(db)
    paid = http.post(
        PAY,
        json={"amount": 1_000, "phone": "13800138010", "marketing_consent": True},
        headers=a.terminal,
    ).json()
    member_id = paid["member"]["id"]
    for headers in (b.admin, b.staff):
        own = http.get(f"/v1/merchants/{b.merchant_id}/members", headers=headers).json()
        assert own["data"] == []
        assert (
            http.get(f"/v1/merchants/{b.merchant_id}/visits", headers=headers).json()["data"] == []
        )
        # Asking for A's member under B's own merchant id: not found, not leaked.
        foreign = http.get(f"/v1/merchants/{b.merchant_id}/members/{member_id}", headers=headers)
        assert foreign.status_code == 404
        assert http.get(f"/v1/merchants/{a.merchant_id}/members", headers=headers).status_code == (
            404
        )
    # The same phone at B enrolls a separate membership; B sees no consent from A.
    at_b = http.post(PAY, json={"amount": 500, "phone": "13800138010"}, headers=b.terminal).json()
    assert at_b["member"]["id"] != member_id
    assert at_b["member"]["marketing_consent"] is False
    seen_by_b = http.get(
        f"/v1/merchants/{b.merchant_id}/members/{at_b['member']['id']}", headers=b.admin
    ).json()
    assert seen_by_b["member"]["phone"] is None
    assert seen_by_b["member"]["visit_count"] == 1
    # Terminals record payments but do not browse members.
    assert http.get(f"/v1/merchants/{a.merchant_id}/members", headers=a.terminal).status_code == (
        403
    )


def test_member_list_filters_by_consent(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    yes = make_member(db, tenant, "+8613800138011", consent=True)
    no = make_member(db, tenant, "+8613800138012")
    url = f"/v1/merchants/{tenant.merchant_id}/members"
    both = http.get(url, headers=tenant.admin).json()["data"]
    assert {m["id"] for m in both} == {yes, no}
    consenting = http.get(url, params={"marketing_consent": True}, headers=tenant.admin).json()
    assert [m["id"] for m in consenting["data"]] == [yes]
    not_a_phone = http.get(url, params={"phone": "12"}, headers=tenant.admin)
    assert not_a_phone.status_code == 200 and not_a_phone.json()["data"] == []  # finds nobody


def test_staff_record_and_withdraw_a_members_consent(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    paid = http.post(PAY, json={"amount": 900, "phone": "13800138013"}, headers=tenant.terminal)
    member_id = paid.json()["member"]["id"]
    url = f"/v1/merchants/{tenant.merchant_id}/members/{member_id}"
    given = http.post(f"{url}/consent", json={"marketing_consent": True}, headers=tenant.staff)
    assert given.status_code == 200, given.text
    assert given.json()["marketing_consent"] is True
    assert given.json()["consent_recorded_by"] == f"staff:{tenant.staff_id}"
    # Consent recorded by staff does not conjure the plain number: it was never kept.
    assert given.json()["phone"] is None
    # Consent given at the counter with the number keeps it for this merchant.
    http.post(
        PAY,
        json={"amount": 900, "phone": "13800138013", "marketing_consent": True},
        headers=tenant.terminal,
    )
    assert http.get(url, headers=tenant.admin).json()["member"]["phone"] == "+8613800138013"
    withdrawn = http.post(
        f"{url}/consent", json={"marketing_consent": False}, headers=tenant.admin
    ).json()
    assert withdrawn["marketing_consent"] is False
    assert withdrawn["consent_withdrawn_at"] is not None
    assert withdrawn["phone"] is None


def test_consumers_give_and_withdraw_consent_themselves(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    _, token = make_consumer(db, "Lin")
    me = bearer(token)
    assert http.get("/v1/consumers/me/consents", headers=me).json() == []
    given = http.post(
        "/v1/consumers/me/consents",
        json={"merchant_id": tenant.merchant_id, "marketing_consent": True},
        headers=me,
    )
    assert given.status_code == 200, given.text
    assert given.json()["source"] == "online"
    assert given.json()["consent_recorded_by"] == "consumer"
    listed = http.get("/v1/consumers/me/consents", headers=me).json()
    assert [(c["merchant_id"], c["marketing_consent"]) for c in listed] == [
        (tenant.merchant_id, True)
    ]
    withdrawn = http.post(
        "/v1/consumers/me/consents",
        json={"merchant_id": tenant.merchant_id, "marketing_consent": False},
        headers=me,
    ).json()
    assert withdrawn["marketing_consent"] is False
    members = http.get(
        f"/v1/merchants/{tenant.merchant_id}/members",
        params={"marketing_consent": False},
        headers=tenant.admin,
    ).json()["data"]
    assert [m["id"] for m in members] == [withdrawn["member_id"]]
    unknown = http.post(
        "/v1/consumers/me/consents",
        json={"merchant_id": "mer_00000000000000000000000000", "marketing_consent": True},
        headers=me,
    )
    assert unknown.status_code == 404
    # Merchant keys cannot act as a consumer.
    as_merchant = http.get("/v1/consumers/me/consents", headers=tenant.admin)
    assert as_merchant.status_code == 403
