"""English and Simplified Chinese: choosing the locale, translations, locale-aware formats.

The catalog is the `.po` file itself, compiled in memory on first use: no build step and no
binary file in the repository.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, numbers
from babel import dates as babel_dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文"}
DEFAULT_LOCALE = "en"
_TRANSLATIONS = Path(__file__).parent / "translations"


@lru_cache(maxsize=8)
def translations(locale: str) -> NullTranslations:
    po = _TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The chosen locale if it is one we have, else the best match of Accept-Language."""
    if chosen in LOCALES:
        return chosen
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag.startswith("zh"):
            # Traditional-script tags fall back to English: we do not ship zh-Hant.
            if "hant" in tag or tag in ("zh-tw", "zh-hk", "zh-mo"):
                continue
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


class Formats:
    """Money, numbers, dates and times written the way the reader's locale writes them."""

    def __init__(self, locale: str, timezone: str = "UTC") -> None:
        self.locale = locale
        self.babel = Locale.parse("zh_Hans_CN" if locale == "zh_Hans" else "en_US")
        self.zone = ZoneInfo(timezone)

    def money(self, minor: int | None, currency: str) -> str:
        if minor is None:
            return "—"
        digits = numbers.get_currency_precision(currency)
        return numbers.format_currency(minor / 10**digits, currency, locale=self.babel)

    def money_round(self, minor: int | None, currency: str) -> str:
        """Whole units, for axis labels and buckets (¥500, not ¥500.00)."""
        if minor is None:
            return "—"
        digits = numbers.get_currency_precision(currency)
        return numbers.format_currency(
            round(minor / 10**digits),
            currency,
            locale=self.babel,
            currency_digits=False,
            format="¤#,##0",
        )

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return numbers.format_decimal(value, format=pattern, locale=self.babel)

    def percent(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
        return numbers.format_percent(value, format=pattern, locale=self.babel)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def date(self, moment: date | datetime | None, form: str = "medium") -> str:
        if moment is None:
            return "—"
        if isinstance(moment, datetime):
            moment = self.local(moment).date()
        return babel_dates.format_date(moment, format=form, locale=self.babel)

    def datetime(self, moment: datetime | None, form: str = "medium") -> str:
        if moment is None:
            return "—"
        return babel_dates.format_datetime(moment, format=form, tzinfo=self.zone, locale=self.babel)

    def short_date(self, moment: date) -> str:
        return babel_dates.format_skeleton("MMMd", moment, locale=self.babel)

    def weekday(self, index: int, width: str = "abbreviated") -> str:
        """0 = Monday."""
        return self.babel.days["format"][width][index]
