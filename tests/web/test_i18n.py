"""English and Simplified Chinese: Accept-Language, the switch, locale formats."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from o2oloop.web import i18n
from web_kit import submit


def test_accept_language_picks_chinese_and_the_switch_overrides_it(http: httpx.Client) -> None:
    chinese = http.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-Hans">' in chinese.text and "登录" in chinese.text

    switched = submit(http, "/signin", "/locale", {"locale": "en", "next": "/signin"})

    assert switched.status_code == 303
    english = http.get("/signin", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in english.text and "Forgot your password?" in english.text


def test_negotiation() -> None:
    assert i18n.negotiate("fr-FR, zh-Hans;q=0.5") == "zh_Hans"
    assert i18n.negotiate("zh-TW") == "en"
    assert i18n.negotiate("de") == "en"
    assert i18n.negotiate("zh-CN", chosen="en") == "en"
    assert i18n.negotiate(None) == "en"


def test_money_numbers_and_dates_follow_the_locale() -> None:
    en, zh = i18n.Formats("en", "Asia/Shanghai"), i18n.Formats("zh_Hans", "Asia/Shanghai")
    assert en.money(123456, "CNY") == "CN¥1,234.56"
    assert zh.money(123456, "CNY") == "¥1,234.56"
    assert en.money(500, "JPY") == "¥500"
    moment = datetime(2026, 6, 1, 16, 30, tzinfo=UTC)  # 00:30 on 2 June in Shanghai
    assert en.date(moment) == "Jun 2, 2026"
    assert zh.date(moment) == "2026年6月2日"
    assert zh.weekday(0) == "周一"
    assert en.percent(0.256) == "26%"
