"""What every part of the demo city shares: its merchants, consumers, clock and report.

`city.build_city` creates one `CityRun`; each part (`sim/prepaid.py`, `sim/stored_value.py`,
`sim/settlements.py`, …) takes it and acts through the real service layer.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.codes import service as codes
from o2oloop.customers import phones
from o2oloop.customers import service as customers
from o2oloop.db import Database
from o2oloop.merchants.models import Category

TIMEZONE = "Asia/Shanghai"
PLATFORM = Principal(key_id="demo", role=Role.PLATFORM_ADMIN)


@dataclass
class DemoStore:
    id: str
    terminal: Principal
    latitude: float
    longitude: float


@dataclass
class DemoMerchant:
    id: str
    category: Category
    stores: list[DemoStore]
    coupon_ids: list[str]
    admin_token: str = ""
    admin: Principal | None = None
    voucher_id: str | None = None  # its prepaid set package (sim/prepaid.py)
    sells_stored_value: bool = False  # (sim/stored_value.py)


@dataclass
class CityReport:
    merchants: int = 0
    stores: int = 0
    consumers: int = 0
    relationships: int = 0
    visits: int = 0
    claims: int = 0
    redemptions: int = 0
    rejected: int = 0
    vouchers_bought: int = 0
    vouchers_used: int = 0
    vouchers_refunded: int = 0
    vouchers_expired: int = 0
    top_ups: int = 0
    stored_value_spends: int = 0
    settlements: int = 0
    reviews: int = 0
    review_replies: int = 0
    reviews_hidden: int = 0
    campaigns: int = 0
    campaign_messages: int = 0
    campaign_extra_visits: int = 0
    started: datetime | None = None
    ended: datetime | None = None
    keys: dict[str, str] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)  # people's sign-ins (email, password)
    truth: dict[str, dict[str, float]] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)  # sim/channels.py's figures


Progress = Callable[[str, int, int], None]


@dataclass
class Visit:
    """One visit of the loop, as the parts see it while it happens."""

    consumer: int  # index of the consumer in the city
    merchant: DemoMerchant
    store: DemoStore
    moment: datetime
    amount: int  # the bill, minor units
    first: bool  # the relationship's first visit
    app_user: bool
    code: str | None = None  # the code redeemed at this visit, if any
    visit_id: str | None = None  # the visit as recorded at the counter
    paid_with_stored_value: bool = False


@dataclass
class CityRun:
    db: Database
    seed: int
    secret_key: str
    code_keys: codes.Keys
    frozen: clock.FrozenClock
    start: datetime
    end: datetime
    merchants: list[DemoMerchant]
    report: CityReport
    phone_numbers: np.ndarray
    consumer_ids: dict[int, str] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)  # each part's own state over the run
    _rngs: dict[str, np.random.Generator] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)  # each part's own running state

    def rng(self, part: str) -> np.random.Generator:
        """Each part draws from its own stream, so adding a part never changes the others."""
        if part not in self._rngs:
            self._rngs[part] = np.random.default_rng([self.seed, zlib.crc32(part.encode())])
        return self._rngs[part]

    def phone_of(self, consumer: int) -> str:
        return f"139{int(self.phone_numbers[consumer]):08d}"

    def consumer_id(self, session: Session, consumer: int) -> str:
        """The consumer's app account, found (or made) by phone as the app would."""
        if consumer not in self.consumer_ids:
            e164 = phones.normalise(self.phone_of(consumer), "CN")
            found, _ = customers.consumer_by_phone(
                session, phone_hash=phones.phone_hash(e164, self.secret_key)
            )
            self.consumer_ids[consumer] = found.id
        return self.consumer_ids[consumer]

    def app(self, session: Session, consumer: int) -> Principal:
        """The consumer acting in the app."""
        return Principal(
            key_id="demo", role=Role.CONSUMER, consumer_id=self.consumer_id(session, consumer)
        )
