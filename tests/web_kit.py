"""Helpers for page tests: people with passwords, a browser-like client that keeps cookies
and sends each form's CSRF token the way a browser would."""

from __future__ import annotations

import re

import httpx

from factories import PLATFORM, Tenant
from o2oloop.auth.models import Role
from o2oloop.db import Database
from o2oloop.people import service as people

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def make_person(
    db: Database,
    tenant: Tenant | None,
    *,
    email: str | None = None,
    role: Role = Role.MERCHANT_ADMIN,
    password: str = PASSWORD,
) -> str:
    """A person of the tenant's merchant (or a platform admin without one); their email."""
    merchant_id = tenant.merchant_id if tenant else None
    email = email or f"{role.value}.{merchant_id or 'platform'}@example.com".lower()
    with db.transaction() as session:
        people.create_person(
            session,
            principal=PLATFORM,
            email=email,
            password=password,
            role=role if tenant else Role.PLATFORM_ADMIN,
            merchant_id=merchant_id,
            name="Test person",
        )
    return email


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def submit(client: httpx.Client, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """GET the page, then POST its form with the token it carried, as a browser would."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token})


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return submit(client, "/signin", "/signin", {"email": email, "password": password})
