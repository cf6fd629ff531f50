"""The platform admin's pages: onboard, deactivate, close with refunds, reconcile, dead jobs."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from factories import make_consumer, make_tenant
from money_kit import deliver, give_program, top_up
from o2oloop.auth import service as keys
from o2oloop.db import Database
from o2oloop.errors import Unauthorized
from o2oloop.ledger.models import AccountKind, LedgerAccount
from o2oloop.merchants.models import Merchant
from web_kit import make_person, sign_in, submit


def test_only_platform_admins_see_the_admin_pages(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    assert http.get("/admin").status_code in (303, 307)  # sign in first
    sign_in(http, make_person(db, tenant))
    assert http.get("/admin").status_code == 404
    assert http.get("/admin/reconciliation").status_code == 404


def test_onboard_then_deactivate_a_merchant(http: httpx.Client, db: Database) -> None:
    sign_in(http, make_person(db, None))
    bad = submit(http, "/admin", "/admin/merchants", {"name": "", "category": "catering"})
    assert bad.status_code == 422 and "this is required" in bad.text
    made = submit(
        http, "/admin", "/admin/merchants",
        {"name": "Night Noodles", "category": "catering", "currency": "CNY",
         "timezone": "Asia/Shanghai", "country": "CN", "commission_bps": "300"},
    )  # fmt: skip
    assert made.status_code == 200 and "Night Noodles is onboarded" in made.text
    token = re.search(r"o2o_key_[0-9a-z]+_[A-Za-z0-9_-]+", made.text).group(0)
    with db.reading() as session:
        merchant = session.scalar(select(Merchant).where(Merchant.name == "Night Noodles"))
        assert merchant is not None and merchant.commission_bps == 300
        merchant_id = merchant.id
        assert keys.authenticate(session, token).merchant_id == merchant_id
    gone = submit(http, "/admin", f"/admin/merchants/{merchant_id}/deactivate", {})
    assert gone.status_code == 303 and gone.headers["location"].startswith("/admin")
    with db.reading() as session:
        assert not session.get(Merchant, merchant_id).active
        with pytest.raises(Unauthorized):
            keys.authenticate(session, token)


def test_closing_refunds_every_stored_value_balance(http: httpx.Client, db: Database) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=50000)
    deliver(db)
    sign_in(http, make_person(db, None))
    closed = submit(http, "/admin", f"/admin/merchants/{tenant.merchant_id}/close", {})
    assert closed.status_code == 200 and "1 stored-value balances are being refunded" in closed.text
    deliver(db)
    with db.reading() as session:
        balance = session.scalar(
            select(LedgerAccount.balance).where(
                LedgerAccount.kind == AccountKind.STORED_VALUE_ESCROW,
                LedgerAccount.merchant_id == tenant.merchant_id,
            )
        )
        assert balance == 0 and not session.get(Merchant, tenant.merchant_id).active
    report = http.get("/admin/reconciliation")
    assert report.status_code == 200 and "Everything reconciles" in report.text
    jobs = http.get("/admin/jobs")
    assert jobs.status_code == 200 and "Dead-letter jobs" in jobs.text


def test_a_dead_job_is_retried_from_its_page(db: Database, http: httpx.Client) -> None:
    from o2oloop import clock
    from o2oloop.jobs.models import Job, JobState

    now = clock.now()
    with db.transaction() as session:
        session.add(
            Job(
                id="job_dead_1",
                key="evt_1:dashboard.count_visit",
                handler="dashboard.count_visit",
                event_id="evt_1",
                state=JobState.DEAD,
                attempts=8,
                max_attempts=8,
                run_after=now,
                last_error="OperationalError: database is locked",
                created_at=now,
                updated_at=now,
            )
        )
    sign_in(http, make_person(db, None))
    page = http.get("/admin/jobs")
    assert "database is locked" in page.text and "/admin/jobs/job_dead_1/retry" in page.text
    retried = submit(http, "/admin/jobs", "/admin/jobs/job_dead_1/retry", {})
    assert retried.status_code == 303
    assert "Pending again" in http.get(retried.headers["location"]).text
    with db.reading() as session:
        job = session.get(Job, "job_dead_1")
        assert job is not None and job.state is JobState.PENDING and job.attempts == 0
    again = submit(http, "/admin/jobs", "/admin/jobs/job_dead_1/retry", {})
    assert again.status_code == 409 and "only a dead job can be retried" in again.text
    assert submit(http, "/admin/jobs", "/admin/jobs/job_nobody/retry", {}).status_code == 404
