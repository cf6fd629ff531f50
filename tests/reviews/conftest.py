"""Fixtures for reviews: a log configuration, a consumer with a verified visit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from factories import (
    Tenant,
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop.codes import service as codes
from o2oloop.customers import phones
from o2oloop.customers.models import Consumer
from o2oloop.db import Database
from o2oloop.reviews.checkpoints import Signer
from o2oloop.reviews.log import LogConfig
from o2oloop.visits import schemas as visit_schemas
from o2oloop.visits import service as visits

SECRET = "factories"


@pytest.fixture
def log_config() -> LogConfig:
    return LogConfig(Signer.from_seed("o2oloop.test/reviews", bytes(32)), checkpoint_every=4)


@dataclass
class Visitor:
    consumer_id: str
    key: str
    phone: str


_phones = iter(range(10_000_000, 99_999_999, 7919))


def make_visitor(db: Database, secret: str = SECRET, name: str = "Ada") -> Visitor:
    """A consumer who signed up with a phone number the terminal will report."""
    phone = f"139{next(_phones):08d}"
    consumer_id, key = make_consumer(db, name=name)
    with db.transaction() as session:
        consumer = session.get(Consumer, consumer_id)
        assert consumer is not None
        consumer.phone_hash = phones.phone_hash(phones.normalise(phone, "CN"), secret)
    return Visitor(consumer_id, key, phone)


def pay(
    db: Database,
    tenant: Tenant,
    visitor: Visitor,
    amount: int = 5000,
    secret: str = SECRET,
    **extra: object,
) -> str:
    """A POS payment by the visitor at the tenant's store: the visit's id."""
    with db.transaction() as session:
        outcome = visits.record_payment(
            session,
            principal=terminal_principal(tenant),
            data=visit_schemas.PaymentCreate(amount=amount, phone=visitor.phone, **extra),
            secret_key=secret,
        )
        return outcome.visit.id


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return make_tenant(db)


CODE_KEYS = codes.Keys.from_secret(SECRET)


def redeem(db: Database, tenant: Tenant, visitor: Visitor) -> str:
    """The visitor claims a coupon of the tenant and redeems it at the counter: its id."""
    offer_id = make_offer(db, tenant)
    with db.transaction() as session:
        code = codes.claim(
            session,
            principal=consumer_principal(visitor.consumer_id),
            offer_id=offer_id,
            keys=CODE_KEYS,
        )
        redeemed = codes.redeem(
            session,
            principal=terminal_principal(tenant),
            code=CODE_KEYS.code_text(code.id),
            bill_amount=8800,
            keys=CODE_KEYS,
            rate_per_minute=1000,
        )
        return redeemed.redemption.id
