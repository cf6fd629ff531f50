"""A member with no visits yet, written directly, for the analytics tests."""

from __future__ import annotations

from datetime import datetime

from o2oloop.customers.models import Consumer, Membership, MemberSource
from o2oloop.db import new_id


def add_pos_member(session, merchant_id: str, at: datetime) -> tuple[str, str]:
    """A consumer enrolled at the counter at `at`; (consumer id, member id)."""
    consumer_id, member_id = new_id("csm"), new_id("mem")
    session.add(Consumer(id=consumer_id, display_name="", created_at=at))
    session.add(
        Membership(
            id=member_id,
            merchant_id=merchant_id,
            consumer_id=consumer_id,
            source=MemberSource.POS,
            marketing_consent=False,
            visit_count=0,
            total_spent=0,
            created_at=at,
            updated_at=at,
        )
    )
    session.flush()
    return consumer_id, member_id
