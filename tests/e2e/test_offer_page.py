"""A consumer scans a poster's tracking link on a phone, lands on the offer's page, claims
it with the app's key, and the claim is the poster's; a screenshot at phone width."""

from __future__ import annotations

from pathlib import Path

import httpx

from conftest import LiveServer
from factories import bearer, make_consumer, make_offer, make_tenant
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.db import Database

PHONE = {"width": 390, "height": 844}


def test_a_poster_link_on_a_phone_lands_claims_and_is_attributed(
    browser, settings: Settings, sqlite_db: Database, screenshots: Path
) -> None:
    tenant = make_tenant(sqlite_db)
    offer_id = make_offer(
        sqlite_db, tenant, title="Hotpot for two", amount_off=2500, min_spend=10_000,
        description="Any weekday evening, for a table of two or more.",
    )  # fmt: skip
    _, key = make_consumer(sqlite_db)
    with LiveServer(create_app(settings, sqlite_db)) as server:
        poster = httpx.post(
            f"{server.url}/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/publications",
            json={"channel": "poster"},
            headers={**tenant.admin, "Idempotency-Key": "poster-e2e"},
        ).json()
        context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True)
        context.add_init_script(f"localStorage.setItem('o2oloop.consumer_key', '{key}')")
        page = context.new_page()
        page.goto(poster["short_url"].replace("http://testserver", server.url))
        assert page.url.startswith(f"{server.url}/offers/{offer_id}?via={poster['token']}")
        assert page.get_by_role("heading", name="Hotpot for two").is_visible()
        assert page.locator("svg").first.is_visible()  # the claim link's QR
        page.screenshot(path=str(screenshots / "offer-page-phone.png"), full_page=True)

        page.get_by_role("button", name="Claim this offer").click()
        page.locator("[data-claim-result] .code").wait_for()
        code = page.locator("[data-claim-result] .code").inner_text()
        page.screenshot(path=str(screenshots / "offer-page-claimed-phone.png"), full_page=True)

        wallet = httpx.get(f"{server.url}/v1/consumers/me/codes", headers=bearer(key)).json()
        assert [c["code"] for c in wallet["data"]] == [code]
        funnel = httpx.get(
            f"{server.url}/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/funnel",
            headers=tenant.staff,
        ).json()
        rows = {r["channel"]: r for r in funnel["rows"]}
        assert rows["poster"]["claims"] == 1 and rows["poster"]["clicks"] >= 0
        context.close()
