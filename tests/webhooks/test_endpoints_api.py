"""Webhook endpoints over real HTTP, on SQLite and PostgreSQL: register, read, change, rotate;
tenancy, roles, and the URLs refused at registration."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from factories import bearer, make_tenant, platform_admin_key
from o2oloop.db import Database
from o2oloop.webhooks.models import WebhookEndpoint

URL = "https://hooks.example.com/o2oloop"


def _base(merchant_id: str) -> str:
    return f"/v1/merchants/{merchant_id}/webhook-endpoints"


def _create(http: httpx.Client, tenant, **fields) -> httpx.Response:
    body = {"url": URL, "event_types": ["code.redeemed"], **fields}
    return http.post(
        _base(tenant.merchant_id),
        json=body,
        headers={**tenant.admin, "Idempotency-Key": uuid.uuid4().hex},
    )


def test_a_merchant_registers_an_endpoint_and_sees_its_secret_once(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    key = {"Idempotency-Key": "endpoint-1"}
    body = {"url": URL, "description": "ERP", "event_types": ["code.redeemed", "visit.recorded"]}
    created = http.post(_base(tenant.merchant_id), json=body, headers={**tenant.admin, **key})
    assert created.status_code == 201, created.text
    endpoint, secret = created.json()["endpoint"], created.json()["secret"]
    assert secret.startswith("whsec_")
    assert endpoint["event_types"] == ["code.redeemed", "visit.recorded"]
    assert endpoint["enabled"] is True

    again = http.post(_base(tenant.merchant_id), json=body, headers={**tenant.admin, **key})
    assert again.json() == created.json()  # a retry replays the first answer, not a new secret

    read = http.get(f"{_base(tenant.merchant_id)}/{endpoint['id']}", headers=tenant.admin)
    assert read.status_code == 200
    assert secret not in read.text and "secret_encrypted" not in read.text
    listed = http.get(_base(tenant.merchant_id), headers=tenant.admin).json()
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]


def test_an_endpoint_is_changed_and_disabled(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    endpoint = _create(http, tenant).json()["endpoint"]
    path = f"{_base(tenant.merchant_id)}/{endpoint['id']}"
    changed = http.patch(
        path,
        json={"url": URL + "/v2", "event_types": ["member.enrolled"], "enabled": False},
        headers=tenant.admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == URL + "/v2"
    assert changed.json()["enabled"] is False
    assert changed.json()["disabled_reason"] == "disabled by the merchant"
    enabled = http.patch(path, json={"enabled": True}, headers=tenant.admin).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_day(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    created = _create(http, tenant).json()
    path = f"{_base(tenant.merchant_id)}/{created['endpoint']['id']}/rotate-secret"
    rotated = http.post(path, headers={**tenant.admin, "Idempotency-Key": "rot-1"})
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None
    at_once = http.post(
        path, json={"overlap_hours": 0}, headers={**tenant.admin, "Idempotency-Key": "rot-2"}
    )
    assert at_once.json()["previous_secret_expires_at"] is None


def test_another_merchants_endpoint_is_not_found(db: Database, http: httpx.Client) -> None:
    mine, theirs = make_tenant(db), make_tenant(db)
    endpoint = _create(http, theirs).json()["endpoint"]
    for path in (
        f"{_base(theirs.merchant_id)}/{endpoint['id']}",
        f"{_base(mine.merchant_id)}/{endpoint['id']}",
        f"{_base(mine.merchant_id)}/{endpoint['id']}/attempts",
        f"{_base(mine.merchant_id)}/{endpoint['id']}/deliveries",
    ):
        answer = http.get(path, headers=mine.admin)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/problem+json")
    rotate = http.post(
        f"{_base(mine.merchant_id)}/{endpoint['id']}/rotate-secret", headers=mine.admin
    )
    assert rotate.status_code == 404
    assert http.get(_base(theirs.merchant_id), headers=mine.admin).status_code == 404


def test_staff_and_terminals_cannot_manage_endpoints(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    for who in (tenant.staff, tenant.terminal):
        answer = http.post(
            _base(tenant.merchant_id),
            json={"url": URL, "event_types": ["code.redeemed"]},
            headers=who,
        )
        assert answer.status_code == 403
        assert http.get(_base(tenant.merchant_id), headers=who).status_code == 403


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("ftp://hooks.example.com/x", "https?://"),  # the schema states the scheme
        ("https:///nohost", "no host"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://127.0.0.1/hook", "public addresses only"),
        ("https://10.0.0.8/hook", "public addresses only"),
        ("https://[::1]:8443/hook", "public addresses only"),
        ("https://localhost/hook", "public addresses only"),
        ("https://169.254.169.254/latest", "public addresses only"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://hooks.exa\u0000mple.com/", "control characters"),
        ("https://hooks.example.com/a b", "https?://"),
    ],
)
def test_urls_refused_at_registration(
    db: Database, http: httpx.Client, url: str, detail: str
) -> None:
    answer = _create(http, make_tenant(db), url=url)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert detail in answer.json()["detail"]


def test_unknown_event_types_are_refused_with_the_known_ones(
    db: Database, http: httpx.Client
) -> None:
    answer = _create(http, make_tenant(db), event_types=["code.eaten"])
    assert answer.status_code == 422
    assert "code.redeemed" in answer.json()["detail"]
    assert _create(http, make_tenant(db), event_types=[]).status_code == 422


def test_the_event_type_catalogue_is_listed(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    types = http.get("/v1/webhook-event-types", headers=tenant.admin).json()
    assert {"code.redeemed", "visit.recorded", "member.enrolled"} <= {t["type"] for t in types}


def test_a_description_with_a_nul_is_refused_not_a_500(db: Database, http: httpx.Client) -> None:
    answer = _create(http, make_tenant(db), description="ERP\u0000")
    assert answer.status_code == 422


def test_a_platform_admin_naming_no_merchant_gets_404_and_nothing_is_stored(
    db: Database, http: httpx.Client
) -> None:
    admin = bearer(platform_admin_key(db))
    body = {"url": "https://hooks.example.com/", "event_types": ["code.claimed"]}
    response = http.post(_base("mer_nobody"), json=body, headers=admin)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
