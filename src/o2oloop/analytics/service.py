"""Customer analytics fed by SQL: fit, score, segment and materialise per merchant."""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.analytics.models import MemberScore
from o2oloop.analytics.schemas import MemberScoreRead


def member_score(session: Session, *, member_id: str) -> MemberScoreRead | None:
    """The member's materialised score (the caller has checked the merchant)."""
    row = session.get(MemberScore, member_id)
    return MemberScoreRead.model_validate(row) if row is not None else None
