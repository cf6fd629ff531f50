"""Merchants, stores, staff and terminals over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from factories import bearer, make_tenant, platform_admin_key
from o2oloop.db import Database


def test_platform_admin_onboards_a_merchant_with_store_staff_and_terminal(
    db: Database, http: httpx.Client
) -> None:
    admin = bearer(platform_admin_key(db))
    created = http.post(
        "/v1/merchants",
        json={"name": "Night Noodles", "category": "catering", "commission_bps": 800},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    merchant_id = body["merchant"]["id"]
    assert body["merchant"]["currency"] == "CNY"
    owner = bearer(body["admin_key"]["token"])

    store = http.post(
        f"/v1/merchants/{merchant_id}/stores",
        json={
            "name": "Xuhui",
            "latitude": 31.19,
            "longitude": 121.43,
            "opening_hours": {"fri": [{"open": "18:00", "close": "02:00"}]},
            "capacity_per_hour": 40,
            "capacity_overrides": [{"weekday": "fri", "hour": 20, "capacity": 60}],
        },
        headers=owner,
    )
    assert store.status_code == 201, store.text
    store_id = store.json()["id"]
    assert store.json()["timezone"] == "Asia/Shanghai"
    assert store.json()["opening_hours"] == {"fri": [{"open": "18:00", "close": "02:00"}]}

    terminal = http.post(
        f"/v1/merchants/{merchant_id}/stores/{store_id}/terminals",
        json={"name": "Counter 1"},
        headers=owner,
    )
    assert terminal.status_code == 201, terminal.text
    terminal_key = bearer(terminal.json()["key"]["token"])
    me = http.get("/v1/terminal/me", headers=terminal_key)
    assert me.status_code == 200
    assert me.json()["store"]["id"] == store_id

    staff = http.post(
        f"/v1/merchants/{merchant_id}/staff", json={"name": "Li", "role": "staff"}, headers=owner
    )
    assert staff.status_code == 201
    staff_key = bearer(staff.json()["key"]["token"])
    assert http.get(f"/v1/merchants/{merchant_id}/stores", headers=staff_key).status_code == 200
    # Staff read but do not change the merchant's set-up.
    forbidden = http.patch(
        f"/v1/merchants/{merchant_id}/stores/{store_id}", json={"name": "x"}, headers=staff_key
    )
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")


def test_merchant_admin_cannot_set_its_own_commission(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    response = http.patch(
        f"/v1/merchants/{tenant.merchant_id}", json={"commission_bps": 0}, headers=tenant.admin
    )
    assert response.status_code == 403
    assert "commission" in response.json()["detail"]
    renamed = http.patch(
        f"/v1/merchants/{tenant.merchant_id}", json={"name": "Renamed"}, headers=tenant.admin
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Renamed"
    assert renamed.json()["commission_bps"] == 500


def test_cursor_pagination_walks_every_store_once(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    for i in range(6):
        response = http.post(
            f"/v1/merchants/{tenant.merchant_id}/stores",
            json={"name": f"Branch {i}", "latitude": 31.0, "longitude": 121.0},
            headers=tenant.admin,
        )
        assert response.status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = http.get(
            f"/v1/merchants/{tenant.merchant_id}/stores", params=params, headers=tenant.admin
        ).json()
        pages += 1
        seen += [store["id"] for store in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen)
    assert pages == 3


def test_deactivating_a_terminal_revokes_its_key(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    assert http.get("/v1/terminal/me", headers=tenant.terminal).status_code == 200
    response = http.post(
        f"/v1/merchants/{tenant.merchant_id}/terminals/{tenant.terminal_id}/deactivate",
        headers=tenant.admin,
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    after = http.get("/v1/terminal/me", headers=tenant.terminal)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


def test_deactivated_merchant_keys_stop_working(db: Database, http: httpx.Client) -> None:
    admin = bearer(platform_admin_key(db))
    tenant = make_tenant(db)
    response = http.post(f"/v1/merchants/{tenant.merchant_id}/deactivate", headers=admin)
    assert response.status_code == 200
    for key in (tenant.admin, tenant.staff, tenant.terminal):
        assert http.get(f"/v1/merchants/{tenant.merchant_id}", headers=key).status_code == 401


def test_bad_input_gets_problem_details_not_500(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    cases = [
        ({"name": "x", "latitude": 91, "longitude": 0}, "latitude"),
        ({"name": "x", "latitude": 1, "longitude": 1, "timezone": "Mars/Olympus"}, "timezone"),
        (
            {
                "name": "x",
                "latitude": 1,
                "longitude": 1,
                "opening_hours": {"mon": [{"open": "25:00", "close": "02:00"}]},
            },
            "opening_hours",
        ),
    ]
    for payload, field in cases:
        response = http.post(
            f"/v1/merchants/{tenant.merchant_id}/stores", json=payload, headers=tenant.admin
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 422
        assert field in problem["detail"]
    broken = http.post(
        f"/v1/merchants/{tenant.merchant_id}/stores",
        content=b"{not json",
        headers=tenant.admin | {"content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["type"].endswith("invalid-input")
