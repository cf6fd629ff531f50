"""Shapes of the channels API."""

from __future__ import annotations

from pydantic import BaseModel

from o2oloop.offers.models import DiscountKind, OfferKind


class NearbyStoreRead(BaseModel):
    id: str
    merchant_id: str
    name: str
    latitude: float
    longitude: float
    category: str
    open_now: bool
    rating: float | None


class NearbyOfferRead(BaseModel):
    offer_id: str
    merchant_id: str
    kind: OfferKind
    title: str
    currency: str
    discount_kind: DiscountKind | None
    amount_off: int | None
    percent_off_bps: int | None
    price: int | None
    face_value: int | None
    value: int
    distance_m: float
    store: NearbyStoreRead


class NearbyPage(BaseModel):
    data: list[NearbyOfferRead]
    next_cursor: str | None = None
