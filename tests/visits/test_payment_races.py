"""Concurrent first payments with one new phone number, on real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from factories import make_tenant
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import Database
from o2oloop.visits import schemas
from o2oloop.visits import service as visits
from o2oloop.visits.models import Visit


@pytest.mark.postgres
def test_simultaneous_first_payments_enroll_one_member(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    terminal = Principal(
        key_id="race",
        role=Role.TERMINAL,
        merchant_id=tenant.merchant_id,
        store_id=tenant.store_id,
        terminal_id=tenant.terminal_id,
    )
    workers = 12
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def pay() -> None:
        try:
            barrier.wait()
            with pg_db.transaction() as session:
                visits.record_payment(
                    session,
                    principal=terminal,
                    data=schemas.PaymentCreate(
                        amount=1_000, phone="+8613800138999", marketing_consent=True
                    ),
                    secret_key="race-secret",
                )
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=pay) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pg_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Consumer)) == 1
        (membership,) = session.scalars(select(Membership)).all()
        assert membership.visit_count == workers
        assert membership.total_spent == workers * 1_000
        assert session.scalar(select(func.count()).select_from(Visit)) == workers
