"""Request and response shapes for POS payments and visits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.validation import CurrencyCode, Instant, JsonBody, Name
from o2oloop.visits.models import VisitSource

MinorUnits = Annotated[int, Field(ge=0, le=10**12)]
MemberCard = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")]


class PaymentItem(JsonBody):
    name: Name
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1
    amount: MinorUnits = Field(description="Line total in minor units")


class PaymentCreate(JsonBody):
    """A payment at the counter, as the terminal reports it."""

    amount: Annotated[int, Field(gt=0, le=10**12)] = Field(
        description="Amount paid, in minor units of the merchant's currency (e.g. fen)"
    )
    currency: CurrencyCode | None = Field(
        default=None, description="Must be the merchant's currency when given"
    )
    occurred_at: Instant | None = Field(
        default=None,
        description="When the payment happened (defaults to now); at most 5 minutes ahead "
        "and 30 days back",
    )
    phone: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="The customer's phone; national numbers in the merchant's country"
    )
    member_card: MemberCard | None = None
    code: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")] | None = Field(
        default=None, description="The code redeemed with this payment, as scanned or typed"
    )
    redemption_id: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        default=None,
        description="The redemption this payment completes (from the redeem response); "
        "links the visit to it and, without a phone, to the consumer who claimed the code",
    )
    items: Annotated[list[PaymentItem], Field(max_length=200)] = Field(default_factory=list)
    marketing_consent: bool | None = Field(
        default=None,
        description="The consent the cashier recorded: true gives it, false withdraws it, "
        "absent leaves it unchanged. Needs a phone or member card.",
    )


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    store_id: str
    terminal_id: str | None
    member_id: str | None
    amount: int
    currency: str
    occurred_at: datetime
    source: VisitSource
    code: str | None
    redemption_id: str | None
    items: list[dict[str, Any]]
    created_at: datetime


class PaymentMember(BaseModel):
    id: str
    new_member: bool
    marketing_consent: bool
    member_card: str | None
    visit_count: int


class PaymentRecorded(BaseModel):
    visit: VisitRead
    member: PaymentMember | None
