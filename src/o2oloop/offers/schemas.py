"""Offer shapes. Every rule field defaults to "no restriction"."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from o2oloop.offers.models import DiscountKind, OfferKind, OfferState
from o2oloop.validation import Instant, JsonBody, Name, given, when

Amount = Annotated[int, Field(ge=0, le=10**11, description="Minor units (cents, fen)")]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Window(JsonBody):
    """Store-local time of day; an end at or before the start crosses midnight."""

    start: HHMM
    end: HHMM


class TopupTier(JsonBody):
    pay: Annotated[int, Field(gt=0, le=10**11)]
    bonus: Amount = 0


class OfferRulesIn(JsonBody):
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    valid_days_after_claim: Annotated[int, Field(ge=1, le=3650)] | None = None
    weekdays: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(min_length=1)] | None = (
        Field(default=None, description="0 = Monday … 6 = Sunday; omit for every day")
    )
    time_windows: Annotated[list[Window], Field(max_length=8)] = Field(default_factory=list)
    store_ids: Annotated[list[Annotated[str, Field(max_length=40)]], Field(min_length=1)] | None = (
        None
    )
    per_customer_limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    total_stock: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    new_customers_only: bool = False
    min_spend: Amount | None = None
    # Validity that ends before it starts is refused by the offers service (422): no schema
    # can compare two fields.


def _benefit_in_schema(schema: dict[str, Any]) -> None:
    """What ``benefit_problems`` checks, stated in the schema kind by kind."""
    coupon, one = OfferKind.COUPON, {"minimum": 1}
    schema["allOf"] = [
        when({"kind": coupon}, given("discount_kind")),
        when(
            {"kind": coupon, "discount_kind": DiscountKind.AMOUNT_OFF},
            given("amount_off", amount_off=one, percent_off_bps={"type": "null"}),
        ),
        when(
            {"kind": coupon, "discount_kind": DiscountKind.PERCENT_OFF},
            given("percent_off_bps", amount_off={"enum": [None, 0]}),
        ),
        when({"kind": OfferKind.VOUCHER}, given("price", "face_value", price=one, face_value=one)),
        when({"kind": OfferKind.MEMBERSHIP}, given("price", price=one)),
        when({"kind": OfferKind.STORED_VALUE}, given("topup_tiers", topup_tiers={"minItems": 1})),
    ]


class OfferCreate(OfferRulesIn):
    model_config = ConfigDict(json_schema_extra=_benefit_in_schema)

    kind: OfferKind
    title: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    discount_kind: DiscountKind | None = None
    amount_off: Amount | None = None
    percent_off_bps: Annotated[int, Field(ge=1, le=10_000)] | None = None
    discount_cap: Amount | None = None
    price: Amount | None = None
    face_value: Amount | None = None
    includes: Annotated[str, Field(max_length=2000)] = ""
    topup_tiers: Annotated[list[TopupTier], Field(max_length=10)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _benefit_fits_kind(self) -> OfferCreate:
        problems = benefit_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def benefit_problems(offer: OfferCreate) -> list[str]:
    """What is missing or contradictory in the benefit of an offer of this kind."""
    problems: list[str] = []
    if offer.kind is OfferKind.COUPON:
        if offer.discount_kind is DiscountKind.AMOUNT_OFF and not offer.amount_off:
            problems.append("an amount_off coupon needs amount_off > 0")
        elif offer.discount_kind is DiscountKind.PERCENT_OFF and not offer.percent_off_bps:
            problems.append("a percent_off coupon needs percent_off_bps")
        elif offer.discount_kind is None:
            problems.append("a coupon needs discount_kind: amount_off or percent_off")
        if offer.discount_kind is DiscountKind.AMOUNT_OFF and offer.percent_off_bps:
            problems.append("an amount_off coupon takes no percent_off_bps")
        if offer.discount_kind is DiscountKind.PERCENT_OFF and offer.amount_off:
            problems.append("a percent_off coupon takes no amount_off")
    elif offer.kind in (OfferKind.VOUCHER, OfferKind.MEMBERSHIP):
        if not offer.price:
            problems.append(f"a {offer.kind.value} needs a price > 0")
        if offer.kind is OfferKind.VOUCHER and not offer.face_value:
            problems.append("a voucher needs a face_value (what the set is worth)")
    elif offer.kind is OfferKind.STORED_VALUE and not offer.topup_tiers:
        problems.append("a stored-value card needs at least one top-up tier")
    return problems


class OfferUpdate(JsonBody):
    """Changes allowed while an offer is a draft; a published offer changes only its text."""

    title: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    valid_until: Instant | None = None
    total_stock: Annotated[int, Field(ge=0, le=100_000_000)] | None = None


class OfferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    kind: OfferKind
    state: OfferState
    title: str
    description: str
    currency: str
    discount_kind: DiscountKind | None
    amount_off: int | None
    percent_off_bps: int | None
    discount_cap: int | None
    price: int | None
    face_value: int | None
    includes: str
    topup_tiers: list[TopupTier]
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days_after_claim: int | None
    weekdays: list[int] | None
    time_windows: list[Window]
    store_ids: list[str] | None
    per_customer_limit: int | None
    total_stock: int | None
    new_customers_only: bool
    min_spend: int | None
    issued_count: int
    redeemed_count: int
    created_at: datetime
    updated_at: datetime
