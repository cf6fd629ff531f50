"""An offer's form, both ways: what the page shows for an offer, and the `OfferCreate`
values a submitted form means. Amounts are typed in major units (12.50), percentages as
percent (15), times in the merchant's timezone; an empty field means "no restriction"."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision

from o2oloop.offers.models import Offer

WINDOWS = 4
TIERS = 4
MONEY_FIELDS = ("amount_off", "discount_cap", "price", "face_value", "min_spend")
COUNT_FIELDS = ("valid_days_after_claim", "per_customer_limit", "total_stock")


class Parsed:
    """The values for `OfferCreate` and the fields that could not even be read."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}


def to_minor(text: str, currency: str) -> int:
    digits = get_currency_precision(currency)
    amount = Decimal(text.strip().replace(",", ""))
    if amount < 0:
        raise ValueError("negative")
    minor = amount * (10**digits)
    if minor != minor.to_integral_value():
        raise ValueError("too many decimals")
    return int(minor)


def to_major(minor: int | None, currency: str) -> str:
    if minor is None:
        return ""
    digits = get_currency_precision(currency)
    return f"{Decimal(minor) / (10**digits):.{digits}f}"


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[-1].strip()


def parse_form(form: dict[str, list[str]], *, currency: str, timezone: str) -> Parsed:
    out = Parsed()
    v = out.values
    for name in ("kind", "title", "description", "includes", "discount_kind"):
        text = _one(form, name)
        if text or name in ("title", "kind"):
            v[name] = text
    for name in MONEY_FIELDS:
        text = _one(form, name)
        if text:
            try:
                v[name] = to_minor(text, currency)
            except (InvalidOperation, ValueError):
                out.errors[name] = "enter an amount like 12.50"
    percent = _one(form, "percent_off")
    if percent:
        try:
            bps = Decimal(percent) * 100
            if bps != bps.to_integral_value():
                raise ValueError
            v["percent_off_bps"] = int(bps)
        except (InvalidOperation, ValueError):
            out.errors["percent_off"] = "enter a percentage like 15"
    for name in COUNT_FIELDS:
        text = _one(form, name)
        if text:
            if text.isdigit():
                v[name] = int(text)
            else:
                out.errors[name] = "enter a whole number"
    zone = ZoneInfo(timezone)
    for name in ("valid_from", "valid_until"):
        text = _one(form, name)
        if text:
            try:
                v[name] = datetime.fromisoformat(text).replace(tzinfo=zone)
            except ValueError:
                out.errors[name] = "enter a date and time"
    opens, closes = v.get("valid_from"), v.get("valid_until")
    if opens and closes and closes <= opens:  # the API takes it as never valid; a form asks
        out.errors["valid_until"] = "valid_until must be after valid_from"
    days = sorted({int(d) for d in form.get("weekdays", []) if d.isdigit() and int(d) < 7})
    if days and len(days) < 7:
        v["weekdays"] = days
    windows = []
    for i in range(1, WINDOWS + 1):
        start, end = _one(form, f"window_start_{i}"), _one(form, f"window_end_{i}")
        if start or end:
            if not (start and end):
                out.errors[f"window_{i}"] = "give both a start and an end, or neither"
            windows.append({"start": start[:5], "end": end[:5]})
    v["time_windows"] = windows
    stores = [s for s in form.get("store_ids", []) if s]
    if stores and _one(form, "all_stores") != "1":
        v["store_ids"] = stores
    v["new_customers_only"] = _one(form, "new_customers_only") == "1"
    tiers = []
    for i in range(1, TIERS + 1):
        pay, bonus = _one(form, f"tier_pay_{i}"), _one(form, f"tier_bonus_{i}")
        if pay or bonus:
            try:
                tiers.append(
                    {"pay": to_minor(pay, currency), "bonus": to_minor(bonus or "0", currency)}
                )
            except (InvalidOperation, ValueError):
                out.errors[f"tier_{i}"] = "enter what the customer pays and the bonus, as amounts"
    v["topup_tiers"] = tiers
    if v.get("kind") != "coupon":
        for name in ("discount_kind", "amount_off", "percent_off_bps", "discount_cap"):
            v.pop(name, None)
    elif v.get("discount_kind") == "amount_off":
        v.pop("percent_off_bps", None)
    elif v.get("discount_kind") == "percent_off":
        v.pop("amount_off", None)
    if v.get("kind") != "stored_value":
        v["topup_tiers"] = []
    return out


def field_of(loc: list[str]) -> str:
    """The form field a schema error belongs beside."""
    if not loc:
        return "__all__"
    head = loc[0]
    if head == "time_windows" and len(loc) > 1 and str(loc[1]).isdigit():
        return f"window_{int(loc[1]) + 1}"
    if head == "topup_tiers" and len(loc) > 1 and str(loc[1]).isdigit():
        return f"tier_{int(loc[1]) + 1}"
    if head == "percent_off_bps":
        return "percent_off"
    return head


def form_values(offer: Offer, *, timezone: str) -> dict[str, Any]:
    """What the form shows for an existing offer."""
    zone = ZoneInfo(timezone)
    values: dict[str, Any] = {
        "kind": offer.kind.value,
        "title": offer.title,
        "description": offer.description,
        "includes": offer.includes,
        "discount_kind": offer.discount_kind.value if offer.discount_kind else "amount_off",
        "percent_off": str(Decimal(offer.percent_off_bps) / 100) if offer.percent_off_bps else "",
        "new_customers_only": offer.new_customers_only,
        "weekdays": [str(d) for d in (offer.weekdays or [])],
        "store_ids": offer.store_ids or [],
    }
    for name in MONEY_FIELDS:
        values[name] = to_major(getattr(offer, name), offer.currency)
    for name in COUNT_FIELDS:
        value = getattr(offer, name)
        values[name] = "" if value is None else str(value)
    for name in ("valid_from", "valid_until"):
        moment = getattr(offer, name)
        values[name] = moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if moment else ""
    for i, window in enumerate(offer.time_windows or [], start=1):
        values[f"window_start_{i}"], values[f"window_end_{i}"] = window["start"], window["end"]
    for i, tier in enumerate(offer.topup_tiers or [], start=1):
        values[f"tier_pay_{i}"] = to_major(tier["pay"], offer.currency)
        values[f"tier_bonus_{i}"] = to_major(tier.get("bonus", 0), offer.currency)
    return values


def form_echo(form: dict[str, list[str]]) -> dict[str, Any]:
    """The submitted form, to show again beside its errors."""
    values: dict[str, Any] = {k: v[-1] for k, v in form.items() if v}
    values["weekdays"] = form.get("weekdays", [])
    values["store_ids"] = form.get("store_ids", [])
    values["new_customers_only"] = values.get("new_customers_only") == "1"
    return values
