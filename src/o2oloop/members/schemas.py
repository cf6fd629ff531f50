"""A member's card as their merchant sees it: the membership, latest visits and scores."""

from __future__ import annotations

from pydantic import BaseModel, Field

from o2oloop.analytics.schemas import MemberScoreRead
from o2oloop.customers.schemas import MemberRead
from o2oloop.visits.schemas import VisitRead


class MemberDetail(BaseModel):
    member: MemberRead
    visits: list[VisitRead] = Field(description="The latest visits, newest first")
    score: MemberScoreRead | None = Field(description="Analytics as of the last analyze run")
