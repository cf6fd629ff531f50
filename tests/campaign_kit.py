"""Members with known scores, built directly, for campaign tests."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from o2oloop import clock
from o2oloop.analytics.models import MemberScore, Segment, SpendingLevel
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.campaigns import launch, schemas, service
from o2oloop.campaigns.policy import Policy
from o2oloop.codes.models import Code, Redemption
from o2oloop.customers import service as customers
from o2oloop.customers.models import Membership, MemberSource
from o2oloop.db import Database, new_id
from o2oloop.jobs.models import OutboxEntry
from o2oloop.privacy import service as privacy
from o2oloop.visits.models import Visit, VisitSource

POLICY = Policy(secret_key="test-secret-" + "x" * 32, platform_cap_days=0)


def admin_of(tenant: Any) -> Principal:
    return Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )


def add_member(
    session,
    merchant_id: str,
    *,
    consent: bool = True,
    name: str = "",
    phone: str | None = None,
    visits: int = 0,
    last_visit_days: float | None = None,
    score: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """A consumer and their membership (consent, visit summary, a score row); (member, consumer)."""
    now = clock.now()
    consumer, _ = customers.sign_up(session, display_name=name)
    if phone is not None:
        consumer.phone_e164 = phone
    membership, _ = customers.enroll(
        session, merchant_id=merchant_id, consumer_id=consumer.id, source=MemberSource.POS
    )
    if consent:
        customers.set_consent(session, membership, granted=True, recorded_by="tests")
    membership.visit_count = visits
    if last_visit_days is not None:
        membership.last_visit_at = now - timedelta(days=last_visit_days)
        membership.first_visit_at = now - timedelta(days=last_visit_days + 30)
    if score is not None:
        session.add(_score(membership, now, score))
    session.flush()
    return membership.id, consumer.id


def _score(membership: Membership, now: datetime, values: dict[str, Any]) -> MemberScore:
    base: dict[str, Any] = {
        "visits": 3,
        "frequency": 2,
        "recency_days": 20.0,
        "age_days": 60.0,
        "days_since_last": 10.0,
        "total_spent": 30000,
        "average_spend": 10000,
        "coupon_share": 0.0,
        "r_score": 3,
        "f_score": 3,
        "m_score": 3,
        "rfm": "333",
        "p_alive": 0.8,
        "expected_visits_30d": 1.0,
        "buying_cycle_days": 14.0,
        "expected_next_visit_at": None,
        "expected_average_spend": 10000,
        "clv": 50000,
        "segment": Segment.REGULAR,
        "spending_level": SpendingLevel.MEDIUM,
        "home_cell": None,
    }
    base.update(values)
    return MemberScore(
        member_id=membership.id,
        merchant_id=membership.merchant_id,
        consumer_id=membership.consumer_id,
        as_of=now,
        computed_at=now,
        **base,
    )


def add_visit(session, *, merchant_id: str, store_id: str, consumer_id: str, at, amount=5000):
    session.add(
        Visit(
            id=new_id("vis"),
            merchant_id=merchant_id,
            store_id=store_id,
            consumer_id=consumer_id,
            amount=amount,
            currency="CNY",
            occurred_at=at,
            source=VisitSource.POS,
            items=[],
            created_at=at,
        )
    )


def members(db: Database, merchant_id: str, n: int, **kwargs: Any) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [add_member(session, merchant_id, **kwargs) for _ in range(n)]


def add_code(s, tenant, offer_id: str, consumer_id: str, at, *, state: str = "active") -> str:
    """A personal code built directly (a random digest: nobody types it); its id."""
    code_id = new_id("cod")
    s.add(
        Code(
            id=code_id,
            merchant_id=tenant.merchant_id,
            offer_id=offer_id,
            consumer_id=consumer_id,
            digest=os.urandom(16),
            state=state,
            claimed_at=at,
            price_paid=0,
        )
    )
    s.flush()
    return code_id


def add_redemption(s, tenant, offer_id, code_id, consumer_id, at, bill, *, undone=False) -> None:
    """A redemption of the code at the tenant's first till (or one undone), with its visit."""
    s.add(
        Redemption(
            id=new_id("red"),
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            terminal_id=tenant.terminal_id,
            offer_id=offer_id,
            code_id=code_id,
            consumer_id=consumer_id,
            bill_amount=bill,
            discount_amount=1000,
            state="undone" if undone else "redeemed",
            redeemed_at=at,
            undone_at=at + timedelta(minutes=5) if undone else None,
        )
    )
    # The visit the redemption itself records: never a repeat of itself.
    add_visit(
        s,
        merchant_id=tenant.merchant_id,
        store_id=tenant.store_id,
        consumer_id=consumer_id,
        at=at + timedelta(minutes=2),
        amount=bill,
    )


def launch_unmeasured(
    session, tenant: Any, offer_id: str, *, name: str, channel: str, message_body: str
) -> str:
    """A campaign sent to everyone it targets (no holdout), launched now; its id."""
    return launch_campaign(
        session,
        tenant,
        schemas.CampaignCreate(
            name=name,
            offer_id=offer_id,
            channel=channel,
            measured=False,
            holdout_share=0,
            message_body=message_body,
        ),
    )


def launch_campaign(session, tenant: Any, data: schemas.CampaignCreate) -> str:
    """A campaign of the tenant created and launched by its admin; its id."""
    campaign_id = service.create_campaign(
        session, principal=admin_of(tenant), merchant_id=tenant.merchant_id, data=data
    ).id
    launch.transition(
        session,
        principal=admin_of(tenant),
        merchant_id=tenant.merchant_id,
        campaign_id=campaign_id,
        action="launch",
        policy=POLICY,
    )
    return campaign_id


def erase_consumer(db: Database, consumer_id: str) -> str:
    """The consumer erases themselves; the payload of the `consumer.erased` event recorded."""
    with db.transaction() as s:
        privacy.erase_consumer(
            s, principal=Principal(key_id="k", role=Role.CONSUMER, consumer_id=consumer_id)
        )
    with db.reading() as s:
        (payload,) = s.scalars(
            select(OutboxEntry.payload).where(OutboxEntry.type == "consumer.erased")
        ).all()
    return payload
