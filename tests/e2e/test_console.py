"""A merchant signs in, creates and publishes a coupon with an evening window, and sees the
dashboard; screenshots of the main pages at desktop and phone width (in screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import LiveServer
from factories import make_tenant
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.customers.models import Membership
from o2oloop.db import Database
from o2oloop.offers.models import Offer, OfferState
from web_kit import PASSWORD, make_person, seed_history

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shop(settings: Settings, sqlite_db: Database) -> Iterator[tuple[str, str, Database]]:
    """A live server, a merchant with eight weeks of history, and its owner's email."""
    tenant = make_tenant(sqlite_db)
    seed_history(sqlite_db, tenant)
    email = make_person(sqlite_db, tenant, email="owner@example.com")
    with LiveServer(create_app(settings, sqlite_db)) as server:
        yield server.url, email, sqlite_db


def _shoot(page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def test_sign_in_create_and_publish_an_evening_coupon_then_the_dashboard(
    browser, shop, screenshots: Path
) -> None:
    url, email, db = shop
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.goto(f"{url}/console")
    assert "/signin" in page.url  # not signed in: sent to sign in, and back after
    _shoot(page, screenshots, "signin-desktop")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/console")
    assert page.get_by_role("heading", name="Today so far").is_visible()
    _shoot(page, screenshots, "dashboard-desktop")

    page.get_by_role("link", name="Offers", exact=True).click()
    page.get_by_role("link", name="New coupon").click()
    page.get_by_label("Title").fill("20 off late dinner")
    page.get_by_label("Amount off").fill("20.00")
    page.get_by_label("Window 1 starts").fill("21:00")
    page.get_by_label("Window 1 ends").fill("02:00")
    page.get_by_label("Uses per customer").fill("1")
    _shoot(page, screenshots, "offer-form-desktop")
    page.get_by_role("button", name="Create as draft").click()
    assert page.get_by_text("21:00–02:00").is_visible()
    page.get_by_role("button", name="Publish").click()
    assert page.get_by_text("Published: customers can claim it now.").is_visible()
    _shoot(page, screenshots, "offer-desktop")
    with db.reading() as session:
        offer = session.scalars(select(Offer).where(Offer.title == "20 off late dinner")).one()
        assert offer.state is OfferState.PUBLISHED
        assert offer.time_windows == [{"start": "21:00", "end": "02:00"}]
        assert offer.amount_off == 2000
        offer_id = offer.id

    page.get_by_role("link", name="Dashboard").click()
    assert page.get_by_role("heading", name="Visits per day").is_visible()
    assert page.locator("svg.chart rect.bar").count() > 0
    assert page.get_by_role("heading", name="Store load by weekday and hour").is_visible()

    pages = {
        "offers": "/console/offers",
        "members": "/console/members",
        "money": "/console/money",
        "stores": "/console/stores",
        "staff": "/console/staff",
    }
    with db.reading() as session:
        member_id = session.scalars(
            select(Membership.id).order_by(Membership.visit_count.desc())
        ).first()
    pages["member"] = f"/console/members/{member_id}"
    for name, path in pages.items():
        page.goto(url + path)
        assert page.locator("h1").first.is_visible()
        _shoot(page, screenshots, f"{name}-desktop")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    phone.add_cookies(context.cookies())
    mobile = phone.new_page()
    for name, path in {
        "dashboard": "/console",
        **pages,
        "offer": f"/console/offers/{offer_id}",
    }.items():
        mobile.goto(url + path)
        _shoot(mobile, screenshots, f"{name}-phone")
    mobile.goto(url + "/console")
    assert mobile.get_by_role("heading", name="今天到目前为止").count() == 1
    context.close()
    phone.close()
