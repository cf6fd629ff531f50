"""The cashier's phone in Simplified Chinese: pairing, the typo hint, a typed code checked
and accepted, the payment with the consent question; every step in Chinese, with money in
the locale's form. Screenshots (terminal-*-phone-zh) go where the loop test puts its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from factories import bearer, make_consumer, make_offer, make_tenant
from o2oloop.api import create_app
from o2oloop.web import i18n
from web_kit import PASSWORD, make_person

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
SHOTS = Path(
    os.environ.get("O2O_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".o2oloop/screenshots")
)
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
ZH = i18n.translations("zh_Hans").gettext


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_cashier_works_in_chinese(settings, sqlite_db, frozen_clock) -> None:
    db = sqlite_db
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, title="晚市立减")
    email = make_person(db, tenant, password=PASSWORD)
    _, consumer_key = make_consumer(db)
    with LiveServer(create_app(settings, db)) as live:
        with httpx.Client(base_url=live.url, headers=bearer(consumer_key)) as app:
            claimed = app.post(f"/v1/offers/{offer_id}/claim", headers={"Idempotency-Key": "z1"})
            assert claimed.status_code == 201, claimed.text
            typed = claimed.json()["code"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            desk = browser.new_context(base_url=live.url, locale="zh-CN")
            owner = desk.new_page()
            owner.goto("/signin")
            owner.fill("#f-email", email)
            owner.fill("#f-password", PASSWORD)
            owner.click("main button[type=submit]")
            owner.wait_for_url(re.compile(r"/console$"))
            owner.goto("/console/terminals")
            owner.click(f"button:has-text('{ZH('Show a pairing code')}')")
            code = owner.inner_text("[data-pairing-code]").strip()
            shot(owner, "terminals-pairing-desktop-zh")

            counter = browser.new_context(
                viewport=PHONE, base_url=live.url, is_mobile=True, locale="zh-CN"
            )
            cashier = counter.new_page()
            cashier.goto(f"/terminal/pair?code={code}")
            assert ZH("Pair this device") == "绑定此设备"
            shot(cashier, "terminal-pair-phone-zh")
            cashier.click("button:has-text('绑定此设备')")
            cashier.wait_for_url(re.compile(r"/terminal$"))
            desk_text = cashier.inner_text("main")
            assert "核销券码" in desk_text and "记录付款" in desk_text, desk_text
            wrong = ("1" if typed[0] != "1" else "2") + typed[1:]
            cashier.fill("#f-code", wrong)
            assert "输入错误" in cashier.inner_text("#code-check")
            shot(cashier, "terminal-typo-phone-zh")
            cashier.fill("#f-code", typed)
            assert "格式正确" in cashier.inner_text("#code-check")
            cashier.fill("#f-bill", "128")
            shot(cashier, "terminal-desk-phone-zh")
            cashier.click("button:has-text('核对券码')")
            cashier.wait_for_url(re.compile(r"/terminal/check$"))
            preview = cashier.inner_text("main")
            assert "有效券码" in preview and "应收金额" in preview and "¥118.00" in preview, preview
            shot(cashier, "terminal-preview-phone-zh")
            cashier.click("button:has-text('接受')")
            cashier.wait_for_url(re.compile(r"/terminal/accept$"))
            assert ZH("Redeemed") in cashier.inner_text("main")
            shot(cashier, "terminal-accepted-phone-zh")
            cashier.fill("#f-phone", "13912345678")
            cashier.check("input[name=consent][value=yes]")
            cashier.click("button:has-text('记录付款')")
            cashier.wait_for_url(re.compile(r"/terminal/payment$"))
            assert "已记录付款" in cashier.inner_text("main")
            shot(cashier, "terminal-paid-phone-zh")
            browser.close()
