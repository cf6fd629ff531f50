"""A member's card: the membership with their latest visits and scores, for their merchant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from o2oloop.analytics import service as analytics
from o2oloop.customers import service as customers
from o2oloop.customers.api import member_read
from o2oloop.http import Caller, Reading, problems
from o2oloop.members.schemas import MemberDetail
from o2oloop.visits import service as visit_service
from o2oloop.visits.schemas import VisitRead

router = APIRouter(
    prefix="/v1/merchants/{merchant_id}/members",
    tags=["members"],
    responses=problems(401, 403, 404, 422),
)


@router.get("/{member_id}")
def get_member(
    merchant_id: str,
    member_id: str,
    session: Reading,
    caller: Caller,
    visits: Annotated[int, Query(ge=0, le=200, description="How many latest visits")] = 50,
) -> MemberDetail:
    membership, consumer = customers.get_member(
        session, principal=caller, merchant_id=merchant_id, member_id=member_id
    )
    latest = visit_service.member_visits(
        session, merchant_id=merchant_id, member_id=member_id, limit=visits
    )
    return MemberDetail(
        member=member_read(membership, consumer),
        visits=[VisitRead.model_validate(v) for v in latest],
        score=analytics.member_score(session, member_id=membership.id),
    )
