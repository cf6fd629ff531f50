"""A merchant drafts a campaign, counts its audience, launches it and reads the results
page; replies to a review; adds a webhook endpoint (secret shown once) and sends a failed
delivery again. Screenshots of each page at desktop and phone width (in screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import LiveServer
from factories import make_offer, make_tenant
from o2oloop.api import create_app
from o2oloop.campaigns.models import Campaign, CampaignState
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks.models import DeliveryState, WebhookDelivery
from web_kit import PASSWORD, make_person, make_review, seed_history
from webhooks_kit import make_webhook_delivery

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shop(settings: Settings, sqlite_db: Database) -> Iterator[tuple[str, str, Database, str]]:
    """A live server; a merchant with weeks of history, a coupon, a review and a webhook
    delivery that failed; its owner's email."""
    db = sqlite_db
    tenant = make_tenant(db)
    seed_history(db, tenant)
    make_offer(db, tenant, title="A free dessert")
    make_review(db, settings, tenant, "Friendly staff, the dumplings were perfect.")
    endpoint_id, delivery_id = make_webhook_delivery(db, tenant)
    with db.transaction() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.state, delivery.attempts, delivery.last_status = DeliveryState.FAILED, 10, 500
    email = make_person(db, tenant, email="owner@example.com")
    with LiveServer(create_app(settings, db)) as server:
        yield server.url, email, db, endpoint_id


def _nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _shoot(page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def test_campaigns_reviews_and_webhooks_in_the_browser(browser, shop, screenshots) -> None:
    url, email, db, endpoint_id = shop
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.goto(f"{url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/console")

    _nav(page, "Campaigns")
    _shoot(page, screenshots, "campaigns-empty-desktop")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("Thank our regulars")
    page.get_by_label("Coupon to give").select_option(label="A free dessert")
    page.get_by_label("Regular").check()
    page.get_by_label("Holdout (%)").fill("20")
    page.get_by_role("button", name="Count the audience").click()
    count = page.locator("#audience-count")
    assert count.is_visible() and "members now" in count.inner_text()
    assert page.get_by_label("Name").input_value() == "Thank our regulars"  # kept
    _shoot(page, screenshots, "campaign-form-desktop")
    page.get_by_role("button", name="Save draft").click()
    assert page.get_by_role("heading", name="Audience now").is_visible()
    _shoot(page, screenshots, "campaign-draft-desktop")
    page.get_by_role("button", name="Launch").click()
    assert page.get_by_text("Launched: codes go out").is_visible()
    assert page.get_by_role("heading", name="Results against the holdout").is_visible()
    _shoot(page, screenshots, "campaign-running-desktop")
    with db.reading() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.state is CampaignState.RUNNING and campaign.holdout_bps == 2000
    campaign_path = f"/console/campaigns/{campaign.id}"
    _nav(page, "Campaigns")
    _shoot(page, screenshots, "campaigns-desktop")

    _nav(page, "Reviews")
    assert page.get_by_text("Friendly staff, the dumplings were perfect.").is_visible()
    page.get_by_label("Reply (once, in public)").fill("Thank you! See you next week.")
    page.get_by_role("button", name="Publish reply").click()
    assert page.get_by_text("Your reply is published.").is_visible()
    assert page.get_by_text("Thank you! See you next week.").is_visible()
    _shoot(page, screenshots, "reviews-desktop")

    _nav(page, "Webhooks")
    page.get_by_label("Address (https://…)").fill("https://hooks.example.com/o2oloop")
    page.get_by_label("Note").fill("Our till")
    page.locator("input[value='visit.recorded']").check()
    page.get_by_role("button", name="Add").click()
    assert page.locator("#new-secret").is_visible()
    _shoot(page, screenshots, "webhook-created-desktop")
    page.goto(f"{url}/console/webhooks/{endpoint_id}")
    page.get_by_role("button", name="Send again").click()
    assert page.get_by_text("Queued to be sent again now.").is_visible()
    _shoot(page, screenshots, "webhook-desktop")
    page.goto(f"{url}/console/webhooks")
    _shoot(page, screenshots, "webhooks-desktop")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    phone.add_cookies(context.cookies())
    mobile = phone.new_page()
    for name, path in {
        "campaigns": "/console/campaigns",
        "campaign-form": "/console/campaigns/new",
        "campaign-running": campaign_path,
        "reviews": "/console/reviews",
        "webhooks": "/console/webhooks",
        "webhook": f"/console/webhooks/{endpoint_id}",
    }.items():
        mobile.goto(url + path)
        assert mobile.locator("h1").first.is_visible()
        _shoot(mobile, screenshots, f"{name}-phone")
    context.close()
    phone.close()
