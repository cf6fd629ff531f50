"""Consumer, membership, consent and personal-data shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.customers.models import MemberSource
from o2oloop.validation import Id, JsonBody


class ConsumerCreate(JsonBody):
    display_name: str = Field(default="", max_length=80)


class ConsumerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    display_name: str
    created_at: datetime


class ConsumerCreated(BaseModel):
    consumer: ConsumerRead
    token: str = Field(description="The consumer's API key, shown this once")


class ConsentUpdate(JsonBody):
    """A consumer gives (true) or withdraws (false) marketing consent for one merchant."""

    merchant_id: Id
    marketing_consent: bool


class ConsentRead(BaseModel):
    merchant_id: str
    merchant_name: str
    member_id: str
    source: MemberSource
    marketing_consent: bool
    consent_given_at: datetime | None
    consent_withdrawn_at: datetime | None
    consent_recorded_by: str | None


class MemberConsentUpdate(JsonBody):
    """The consent a member gave or withdrew at the counter, as staff record it."""

    marketing_consent: bool


class MemberRead(BaseModel):
    id: str
    merchant_id: str
    source: MemberSource
    member_card: str | None
    marketing_consent: bool
    consent_given_at: datetime | None
    consent_withdrawn_at: datetime | None
    consent_recorded_by: str | None
    phone: str | None = Field(description="Only while the member consents to marketing")
    first_visit_at: datetime | None
    last_visit_at: datetime | None
    visit_count: int
    total_spent: int
    created_at: datetime
