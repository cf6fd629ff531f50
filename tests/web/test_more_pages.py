"""Money, stores and staff pages: they render, and their forms refuse bad input beside the
field with nothing saved."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from factories import make_tenant
from o2oloop.auth.models import Role
from o2oloop.db import Database
from o2oloop.merchants.models import Store
from o2oloop.people.models import Person
from web_kit import make_person, sign_in, submit


def test_money_page_and_the_stored_value_programme(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))
    assert "Owed to you" in http.get("/console/money").text

    bad = submit(
        http, "/console/money", "/console/money/stored-value", {"tier_pay_1": "abc", "active": "1"}
    )
    good = submit(
        http,
        "/console/money",
        "/console/money/stored-value",
        {"tier_pay_1": "500", "tier_bonus_1": "50", "active": "1"},
    )

    assert bad.status_code == 422 and 'value="abc"' in bad.text
    assert good.status_code == 303
    assert 'value="500.00"' in http.get("/console/money").text


def test_store_hours_past_midnight_and_a_bad_capacity(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))
    page = f"/console/stores/{tenant.store_id}"
    form = {"name": "Night noodles", "address": "1 Lane", "capacity_per_hour": "lots"}

    bad = submit(http, page, page, {**form, "fri_open_1": "18:00", "fri_close_1": "02:00"})
    good = submit(
        http,
        page,
        page,
        {**form, "capacity_per_hour": "40", "fri_open_1": "18:00", "fri_close_1": "02:00"},
    )

    assert bad.status_code == 422 and "enter a whole number" in bad.text
    assert good.status_code == 303
    with db.reading() as session:
        store = session.get(Store, tenant.store_id)
        assert store.capacity_per_hour == 40
        assert store.opening_hours["fri"] == [{"open": "18:00", "close": "02:00"}]
        assert store.opening_hours["mon"] == []
    assert "past midnight" in http.get("/console/stores").text


def test_an_admin_adds_staff_and_a_weak_password_is_refused(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))
    new = {"email": "cashier@example.com", "name": "Li", "role": "merchant_staff"}

    weak = submit(http, "/console/staff", "/console/staff", {**new, "password": "12345678901"})
    added = submit(
        http, "/console/staff", "/console/staff", {**new, "password": "amber violin harbour"}
    )

    assert weak.status_code == 422 and 'value="cashier@example.com"' in weak.text
    assert added.status_code == 303
    with db.reading() as session:
        person = session.scalars(select(Person).where(Person.email == "cashier@example.com")).one()
        assert person.role is Role.MERCHANT_STAFF and person.merchant_id == tenant.merchant_id
    with httpx.Client(base_url=str(http.base_url)) as cashier:
        sign_in(cashier, "cashier@example.com", "amber violin harbour")
        assert cashier.get("/console").status_code == 200
        assert cashier.get("/console/staff").status_code == 403
