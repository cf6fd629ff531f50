"""Test data built through the real service layer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.bootstrap import bootstrap
from o2oloop.config import Settings
from o2oloop.customers import service as customers
from o2oloop.db import Database
from o2oloop.merchants import schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category, StaffRole

_names = itertools.count(1)
# The wiring of every test database, so that its transactions run the in-transaction
# reactions (a store is indexed for nearby search as it is placed).
TEST_WIRING = bootstrap(Settings(env="test", secret_key="test-secret-" + "x" * 32))


def wired(db: Database) -> Database:
    """`db`, with the test wiring installed unless it has one already."""
    if not db.reactions:
        TEST_WIRING.install(db)
    return db


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Tenant:
    """A merchant with one store, an admin, a staff member and a terminal, and their keys."""

    merchant_id: str
    store_id: str
    staff_id: str
    terminal_id: str
    admin_key: str
    staff_key: str
    terminal_key: str
    admin_key_id: str

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    @property
    def staff(self) -> dict[str, str]:
        return bearer(self.staff_key)

    @property
    def terminal(self) -> dict[str, str]:
        return bearer(self.terminal_key)


def platform_admin_key(db: Database) -> str:
    with db.transaction() as session:
        _, token = keys.issue_key(session, role=Role.PLATFORM_ADMIN, label="tests")
    return token


PLATFORM = Principal(key_id="tests", role=Role.PLATFORM_ADMIN)


def make_tenant(
    db: Database,
    *,
    category: Category = Category.CATERING,
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
    commission_bps: int = 500,
) -> Tenant:
    n = next(_names)
    with wired(db).transaction() as session:
        merchant, _owner, admin_token, admin_key = merchants.create_merchant(
            session,
            principal=PLATFORM,
            data=schemas.MerchantCreate(
                name=f"Merchant {n}",
                category=category,
                currency=currency,
                timezone=timezone,
                commission_bps=commission_bps,
            ),
        )
        admin = Principal(key_id=admin_key.id, role=Role.MERCHANT_ADMIN, merchant_id=merchant.id)
        store_id, terminal_id, terminal_token = _store_with_terminal(session, admin, n)
        staff, staff_token, _ = merchants.create_staff(
            session,
            principal=admin,
            merchant_id=merchant.id,
            data=schemas.StaffCreate(name=f"Cashier {n}", role=StaffRole.STAFF),
        )
    return Tenant(
        merchant_id=merchant.id,
        store_id=store_id,
        staff_id=staff.id,
        terminal_id=terminal_id,
        admin_key=admin_token,
        staff_key=staff_token,
        terminal_key=terminal_token,
        admin_key_id=admin_key.id,
    )


def add_store(db: Database, tenant: Tenant) -> Tenant:
    """Another store of the tenant's merchant, with its own terminal: the same tenant seen
    from that store's counter."""
    admin = Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )
    with wired(db).transaction() as session:
        store_id, terminal_id, terminal_token = _store_with_terminal(session, admin, next(_names))
    return replace(tenant, store_id=store_id, terminal_id=terminal_id, terminal_key=terminal_token)


def _store_with_terminal(session: Session, admin: Principal, n: int) -> tuple[str, str, str]:
    """A store of the admin's merchant and a terminal at it: (store id, terminal id, key)."""
    assert admin.merchant_id is not None
    store = merchants.create_store(
        session,
        principal=admin,
        merchant_id=admin.merchant_id,
        data=schemas.StoreCreate(
            name=f"Store {n}", address=f"{n} Market Street", latitude=31.23, longitude=121.47
        ),
    )
    terminal, terminal_token, _ = merchants.create_terminal(
        session,
        principal=admin,
        merchant_id=admin.merchant_id,
        store_id=store.id,
        data=schemas.TerminalCreate(name=f"Counter {n}"),
    )
    return store.id, terminal.id, terminal_token


def make_consumer(db: Database, name: str = "") -> tuple[str, str]:
    """(consumer id, consumer key)."""
    with db.transaction() as session:
        consumer, token = customers.sign_up(session, display_name=name)
    return consumer.id, token


def make_offer(db: Database, tenant: Tenant, **overrides: object) -> str:
    """A published coupon of the tenant (10.00 off by default); returns its id."""
    from o2oloop.offers import schemas as offer_schemas
    from o2oloop.offers import service as offers

    values: dict[str, object] = {
        "kind": "coupon",
        "title": "10 off dinner",
        "discount_kind": "amount_off",
        "amount_off": 1000,
    }
    values.update(overrides)
    admin = Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )
    with db.transaction() as session:
        offer = offers.create_offer(
            session,
            principal=admin,
            merchant_id=tenant.merchant_id,
            data=offer_schemas.OfferCreate.model_validate(values),
        )
        offers.transition(
            session,
            principal=admin,
            merchant_id=tenant.merchant_id,
            offer_id=offer.id,
            action="publish",
        )
    return offer.id


def consumer_principal(consumer_id: str) -> Principal:
    return Principal(key_id="tests", role=Role.CONSUMER, consumer_id=consumer_id)


def terminal_principal(tenant: Tenant) -> Principal:
    return Principal(
        key_id="tests",
        role=Role.TERMINAL,
        merchant_id=tenant.merchant_id,
        store_id=tenant.store_id,
        terminal_id=tenant.terminal_id,
    )


def make_member(
    db: Database, tenant: Tenant, phone: str = "+8613800138000", consent: bool = False
) -> str:
    """A member of the tenant's merchant, enrolled by phone as a POS payment would; its id."""
    from o2oloop.customers.models import MemberSource
    from o2oloop.merchants.models import Merchant

    with db.transaction() as session:
        merchant = session.get(Merchant, tenant.merchant_id)
        assert merchant is not None
        member, e164, _ = customers.identify_member(
            session,
            merchant=merchant,
            phone=phone,
            member_card=None,
            secret_key="factories",
            source=MemberSource.POS,
        )
        assert member is not None
        if consent:
            customers.set_consent(session, member, granted=True, recorded_by="tests", e164=e164)
        return member.id
