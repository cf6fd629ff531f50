"""The whole loop in a real browser (Debian's chromium driven by Playwright).

A merchant signs in, creates and publishes a coupon for the evening (a window past
midnight), pairs the phone at the counter from the console; a consumer claims the coupon
through the API; the cashier's phone redeems it from a photo of the consumer's screen,
records the payment with the phone and the consent answer; the dashboard and the member's
page show the visit. Screenshots at desktop and phone width go to $O2O_SCREENSHOTS
(default .o2oloop/screenshots).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from conftest import LiveServer
from factories import bearer, make_consumer, make_tenant
from o2oloop.analytics import service as analytics
from o2oloop.api import create_app
from web_kit import make_person

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("O2O_SCREENSHOTS", ROOT / ".o2oloop" / "screenshots"))
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery staple"
PAYER = "13912345678"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def consumer_screen(qr_png: bytes, path: Path) -> Path:
    """The consumer's phone as the cashier photographs it: the app's page with the QR on it,
    a little small and off centre, on a grey phone frame."""
    qr = Image.open(io.BytesIO(qr_png)).convert("RGB").resize((300, 300))
    screen = Image.new("RGB", (600, 1100), (60, 64, 72))
    inner = Image.new("RGB", (540, 1000), (250, 250, 250))
    draw = ImageDraw.Draw(inner)
    draw.rectangle((0, 0, 540, 90), fill=(15, 118, 110))
    draw.text((24, 34), "o2oloop wallet - Evening 20 off", fill=(255, 255, 255))
    inner.paste(qr, (110, 260))
    draw.text((120, 600), "Show this code at the counter", fill=(30, 30, 30))
    screen.paste(inner, (30, 50))
    screen = screen.rotate(4, expand=True, fillcolor=(200, 200, 200))
    screen.save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def live(settings, sqlite_db, frozen_clock):
    """The app on a real port, its clock at 20:00 in Shanghai (12:00 UTC)."""
    with LiveServer(create_app(settings, sqlite_db)) as server:
        yield server


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_loop_in_a_browser(live, sqlite_db, tmp_path) -> None:
    db = sqlite_db
    tenant = make_tenant(db)
    email = make_person(db, tenant, password=PASSWORD)
    consumer_id, consumer_key = make_consumer(db)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        desk = browser.new_context(viewport=DESKTOP, base_url=live.url)
        owner = desk.new_page()

        # The owner signs in and creates an evening coupon (18:00 to 02:00, past midnight).
        owner.goto("/console")
        assert "/signin" in owner.url  # sent to sign in, and back afterwards
        shot(owner, "signin-desktop")
        owner.fill("#f-email", email)
        owner.fill("#f-password", PASSWORD)
        owner.click("main button[type=submit]")
        owner.wait_for_url(re.compile(r"/console$"))
        owner.goto("/console/offers/new?kind=coupon")
        owner.fill("input[name=title]:visible", "Evening 20 off")
        owner.select_option("select[name=discount_kind]", "amount_off")
        owner.fill("input[name=amount_off]", "20.00")
        owner.fill("input[name=window_start_1]", "18:00")
        owner.fill("input[name=window_end_1]", "02:00")
        shot(owner, "offer-form-desktop")
        owner.click("form.offer-form button[type=submit]")
        owner.wait_for_url(re.compile(r"/console/offers/ofr_"))
        offer_id = owner.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        owner.click("form[action$='/state'] button:has-text('Publish')")
        owner.wait_for_load_state()
        assert "Published" in owner.content()
        shot(owner, "offer-published-desktop")

        # The owner shows a pairing code; the phone at the counter opens its link once.
        owner.goto("/console/terminals")
        owner.click("button:has-text('Show a pairing code')")
        code = owner.inner_text("[data-pairing-code]").strip()
        shot(owner, "terminals-pairing-desktop")
        counter = browser.new_context(viewport=PHONE, base_url=live.url, is_mobile=True)
        cashier = counter.new_page()
        cashier.goto(f"/terminal/pair?code={code}")
        shot(cashier, "terminal-pair-phone")
        cashier.click("button:has-text('Pair this device')")
        cashier.wait_for_url(re.compile(r"/terminal$"))
        shot(cashier, "terminal-desk-phone")

        # The consumer claims the coupon in the app (the API) and shows its QR.
        with httpx.Client(base_url=live.url, headers=bearer(consumer_key)) as app:
            claimed = app.post(f"/v1/offers/{offer_id}/claim", headers={"Idempotency-Key": "c1"})
            assert claimed.status_code == 201, claimed.text
            qr_png = app.get(f"/v1/consumers/me/codes/{claimed.json()['id']}/qr").content
        photo = consumer_screen(qr_png, tmp_path / "screen.jpg")

        # The typo hint answers while typing, from the check character alone.
        typed = claimed.json()["code"]
        wrong = ("1" if typed[0] != "1" else "2") + typed[1:]
        cashier.fill("#f-code", wrong)
        assert "typo" in cashier.inner_text("#code-check")
        cashier.fill("#f-code", typed)
        assert "Looks right" in cashier.inner_text("#code-check")
        cashier.fill("#f-code", "")

        # The cashier types the bill, takes the photo: the page says what to give.
        cashier.fill("#f-bill", "128")
        cashier.set_input_files("#f-photo", str(photo))  # the page sends it as it is taken
        cashier.wait_for_url(re.compile(r"/terminal/check$"))
        text = cashier.inner_text("main")
        assert "Valid code" in text and "Amount due" in text and "108.00" in text, text
        shot(cashier, "terminal-preview-phone")
        cashier.click("button:has-text('Accept')")
        cashier.wait_for_url(re.compile(r"/terminal/accept$"))
        assert "Redeemed" in cashier.inner_text("main")
        shot(cashier, "terminal-accepted-phone")

        # The payment, with the payer's phone and their answer to the question read out.
        assert cashier.input_value("#f-amount") == "108.00"
        cashier.fill("#f-phone", PAYER)
        cashier.check("input[name=consent][value=yes]")
        cashier.click("button:has-text('Record payment')")
        cashier.wait_for_url(re.compile(r"/terminal/payment$"))
        assert "Payment of" in cashier.inner_text("main")
        shot(cashier, "terminal-paid-phone")
        cashier.set_viewport_size(DESKTOP)
        cashier.goto("/terminal")
        shot(cashier, "terminal-desk-desktop")

        # The dashboard counts the visit and the redemption; the member's page lists it.
        with db.transaction() as session:
            analytics.analyze(session)  # what the worker does every night
        owner.goto("/console")
        dashboard = owner.inner_text("main")
        assert "Visits" in dashboard and "Redemptions" in dashboard
        shot(owner, "dashboard-desktop")
        owner.goto("/console/members")
        shot(owner, "members-desktop")
        owner.click("a[href^='/console/members/']")
        member = owner.inner_text("main")
        assert "108.00" in member or "128.00" in member, member
        shot(owner, "member-desktop")
        phone_owner = browser.new_context(viewport=PHONE, base_url=live.url, is_mobile=True)
        phone_owner.add_cookies(desk.cookies())
        small = phone_owner.new_page()
        for path, name in (("/console", "dashboard-phone"), ("/console/members", "members-phone")):
            small.goto(path)
            shot(small, name)
        browser.close()
    assert consumer_id
