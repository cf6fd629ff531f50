"""Request and response shapes for merchants, stores, staff and terminals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from o2oloop.merchants.hours import WEEKDAYS, parse_hhmm
from o2oloop.merchants.models import Category, StaffRole
from o2oloop.validation import (
    BasisPoints,
    CountryCode,
    CurrencyCode,
    JsonBody,
    Latitude,
    Longitude,
    Name,
    Text,
    TimezoneName,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MerchantCreate(JsonBody):
    name: Name
    category: Category
    currency: CurrencyCode = "CNY"
    timezone: TimezoneName = "Asia/Shanghai"
    country: CountryCode = "CN"
    commission_bps: BasisPoints = 500


class MerchantUpdate(JsonBody):
    name: Name | None = None
    category: Category | None = None
    timezone: TimezoneName | None = None
    country: CountryCode | None = None
    commission_bps: BasisPoints | None = None


class MerchantRead(ORM):
    id: str
    name: str
    category: Category
    currency: str
    timezone: str
    country: str
    commission_bps: int
    active: bool
    created_at: datetime
    updated_at: datetime


class KeyIssued(BaseModel):
    """A freshly issued key: the token is shown this once and never again."""

    key_id: str
    token: str
    role: str


class MerchantCreated(BaseModel):
    merchant: MerchantRead
    staff_id: str
    admin_key: KeyIssued


class Interval(JsonBody):
    open: HHMM
    close: HHMM

    @model_validator(mode="after")
    def _not_empty(self) -> Interval:
        if parse_hhmm(self.open) == parse_hhmm(self.close) and self.open != "00:00":
            raise ValueError("an interval must not open and close at the same minute")
        return self


OpeningHours = dict[Weekday, Annotated[list[Interval], Field(max_length=6)]]


class CapacityOverride(JsonBody):
    weekday: Weekday
    hour: Annotated[int, Field(ge=0, le=23)]
    capacity: Annotated[int, Field(ge=0, le=100_000)]


def _unique_override_slots(
    value: list[CapacityOverride] | None,
) -> list[CapacityOverride] | None:
    """A slot given twice keeps its last capacity, as a JSON object keeps its last key."""
    if value is None:
        return None
    return list({(o.weekday, o.hour): o for o in value}.values())


def _default_hours() -> OpeningHours:
    return {day: [Interval(open="10:00", close="22:00")] for day in WEEKDAYS}  # type: ignore[misc]


class StoreCreate(JsonBody):
    name: Name
    address: Text = ""
    latitude: Latitude
    longitude: Longitude
    timezone: TimezoneName | None = Field(
        default=None, description="Defaults to the merchant's timezone"
    )
    opening_hours: OpeningHours = Field(default_factory=_default_hours)
    capacity_per_hour: Annotated[int, Field(ge=0, le=100_000)] = 50
    capacity_overrides: Annotated[list[CapacityOverride], Field(max_length=168)] = Field(
        default_factory=list
    )

    _unique_slots = field_validator("capacity_overrides")(_unique_override_slots)


class StoreUpdate(JsonBody):
    name: Name | None = None
    address: Text | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimezoneName | None = None
    opening_hours: OpeningHours | None = None
    capacity_per_hour: Annotated[int, Field(ge=0, le=100_000)] | None = None
    capacity_overrides: Annotated[list[CapacityOverride], Field(max_length=168)] | None = None

    _unique_slots = field_validator("capacity_overrides")(_unique_override_slots)


class StoreRead(ORM):
    id: str
    merchant_id: str
    name: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    opening_hours: OpeningHours
    capacity_per_hour: int
    capacity_overrides: list[CapacityOverride]
    active: bool
    created_at: datetime
    updated_at: datetime


class StaffCreate(JsonBody):
    name: Name
    role: StaffRole = StaffRole.STAFF


class StaffUpdate(JsonBody):
    name: Name | None = None
    role: StaffRole | None = None


class StaffRead(ORM):
    id: str
    merchant_id: str
    name: str
    role: StaffRole
    active: bool
    created_at: datetime
    updated_at: datetime


class StaffCreated(BaseModel):
    staff: StaffRead
    key: KeyIssued


class TerminalCreate(JsonBody):
    name: Name


class TerminalUpdate(JsonBody):
    name: Name | None = None


class TerminalRead(ORM):
    id: str
    merchant_id: str
    store_id: str
    name: str
    active: bool
    created_at: datetime
    updated_at: datetime


class TerminalCreated(BaseModel):
    terminal: TerminalRead
    key: KeyIssued


class TerminalSelf(BaseModel):
    terminal: TerminalRead
    store: StoreRead
