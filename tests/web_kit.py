"""Helpers for page tests: people with passwords, a browser-like client that keeps cookies
and sends each form's CSRF token the way a browser would."""

from __future__ import annotations

import re

import httpx

from factories import PLATFORM, Tenant
from o2oloop.auth.models import Role
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.people import service as people

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def make_person(
    db: Database,
    tenant: Tenant | None,
    *,
    email: str | None = None,
    role: Role = Role.MERCHANT_ADMIN,
    password: str = PASSWORD,
) -> str:
    """A person of the tenant's merchant (or a platform admin without one); their email."""
    merchant_id = tenant.merchant_id if tenant else None
    email = email or f"{role.value}.{merchant_id or 'platform'}@example.com".lower()
    with db.transaction() as session:
        people.create_person(
            session,
            principal=PLATFORM,
            email=email,
            password=password,
            role=role if tenant else Role.PLATFORM_ADMIN,
            merchant_id=merchant_id,
            name="Test person",
        )
    return email


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def submit(client: httpx.Client, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """GET the page, then POST its form with the token it carried, as a browser would."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token})


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return submit(client, "/signin", "/signin", {"email": email, "password": password})


def seed_history(db: Database, tenant: Tenant, *, members: int = 30, days: int = 56) -> None:
    """Weeks of payments at the tenant's store ending now: regulars, occasional and new
    members at lunch and dinner hours, then the nightly analysis, so pages have data."""
    import random
    from datetime import timedelta

    from factories import terminal_principal
    from o2oloop import clock
    from o2oloop.analytics import service as analytics
    from o2oloop.visits import schemas
    from o2oloop.visits import service as visits

    rng = random.Random(7)
    end = clock.now()
    frozen = clock.FrozenClock(end - timedelta(days=days))
    cycles = [rng.choice([3, 5, 7, 10, 14, 30]) for _ in range(members)]
    joins = [0 if n < members * 2 // 3 else rng.randrange(days) for n in range(members)]
    with clock.using(frozen):
        for day in range(days):
            moment = end - timedelta(days=days - day)
            with db.transaction() as session:
                for n in range(members):
                    if day < joins[n] or (day + n) % cycles[n]:
                        continue
                    hour = rng.choice([3, 4, 4, 5, 10, 11, 11, 12, 13])  # UTC: lunch, dinner
                    frozen.set(moment.replace(hour=hour, minute=rng.randrange(60)))
                    visits.record_payment(
                        session,
                        principal=terminal_principal(tenant),
                        data=schemas.PaymentCreate(
                            amount=rng.randrange(2000, 20000, 100),
                            phone=f"+861390000{n:04d}",
                            marketing_consent=n % 3 != 0,
                        ),
                        secret_key="test-secret-" + "x" * 32,
                    )
        frozen.set(end)
        with db.transaction() as session:
            analytics.run_for_merchant(session, principal=PLATFORM, merchant_id=tenant.merchant_id)
    run_dashboard_handlers(db)


def run_dashboard_handlers(db: Database) -> int:
    """What the worker does for the dashboard: run its wired handlers over every event in
    the outbox (tests run no worker); the number of events handled."""
    from sqlalchemy import select

    from o2oloop.bootstrap import bootstrap
    from o2oloop.config import Settings
    from o2oloop.events import from_json
    from o2oloop.jobs.models import OutboxEntry

    wiring = bootstrap(Settings(env="test", secret_key="test-secret-" + "x" * 32))
    handled = 0
    with db.reading() as session:
        rows = session.execute(select(OutboxEntry.type, OutboxEntry.payload)).all()
    for event_type, payload in rows:
        handlers = [h for h in wiring.handlers_for(event_type) if h.name.startswith("dashboard.")]
        for handler in handlers:
            with db.transaction() as session:
                handler(session, from_json(event_type, payload))
            handled += 1
    return handled


def make_review(db: Database, settings: Settings, tenant: Tenant, text: str) -> str:
    """A consumer pays at the tenant's counter with their phone, then reviews that visit."""
    from factories import consumer_principal, make_consumer, terminal_principal
    from o2oloop.customers import phones
    from o2oloop.customers.models import Consumer
    from o2oloop.reviews import log, schemas, service
    from o2oloop.visits import schemas as visit_schemas
    from o2oloop.visits import service as visits

    consumer_id, _ = make_consumer(db, name="Ada")
    phone = "13912345678"
    with db.transaction() as session:
        consumer = session.get(Consumer, consumer_id)
        assert consumer is not None
        consumer.phone_hash = phones.phone_hash(phones.normalise(phone, "CN"), settings.secret_key)
    with db.transaction() as session:
        outcome = visits.record_payment(
            session,
            principal=terminal_principal(tenant),
            data=visit_schemas.PaymentCreate(amount=6800, phone=phone),
            secret_key=settings.secret_key,
        )
        visit_id = outcome.visit.id
    with db.transaction() as session:
        review = service.post_review(
            session,
            principal=consumer_principal(consumer_id),
            data=schemas.ReviewCreate(visit_id=visit_id, rating=4, text=text),
            log_config=log.log_config(settings),
        )
        return review.id
