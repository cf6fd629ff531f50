"""The console's members table: each member's learned scores beside their consent, filtered
and paged by value (highest CLV first), for one merchant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from o2oloop.analytics import summary
from o2oloop.analytics.models import MemberScore, Segment, SpendingLevel
from o2oloop.auth.principal import Principal, require_merchant_staff
from o2oloop.customers.models import Membership
from o2oloop.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class MemberFilter:
    segment: Segment | None = None
    spending_level: SpendingLevel | None = None
    consent: bool | None = None
    min_clv: int | None = None
    max_p_alive: float | None = None
    min_p_alive: float | None = None
    next_visit_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberRow:
    score: MemberScore
    consent: bool
    last_visit_at: datetime | None


def _cursor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    clv, _, member_id = text.partition(":")
    try:
        return int(clv), member_id[:40]
    except ValueError:
        raise InvalidInput("cursor: not a cursor of this list") from None


def member_rows(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    where: MemberFilter,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[MemberRow], int, str | None]:
    """(rows, how many match in all, the next page's cursor)."""
    require_merchant_staff(principal, merchant_id)
    conditions = [MemberScore.merchant_id == merchant_id]
    if where.segment is not None:
        conditions.append(MemberScore.segment == where.segment)
    if where.spending_level is not None:
        conditions.append(MemberScore.spending_level == where.spending_level)
    if where.min_clv is not None:
        conditions.append(MemberScore.clv >= where.min_clv)
    if where.min_p_alive is not None:
        conditions.append(MemberScore.p_alive >= where.min_p_alive)
    if where.max_p_alive is not None:
        conditions.append(MemberScore.p_alive <= where.max_p_alive)
    if where.next_visit_before is not None:
        conditions.append(MemberScore.expected_next_visit_at < where.next_visit_before)
    joined = select(MemberScore, Membership.marketing_consent, Membership.last_visit_at).join(
        Membership, Membership.id == MemberScore.member_id
    )
    if where.consent is not None:
        conditions.append(Membership.marketing_consent == where.consent)
    if where in (MemberFilter(), MemberFilter(segment=where.segment)):
        total = summary.members(session, merchant_id, where.segment)  # no walk of every score
    else:
        counted = select(func.count()).select_from(MemberScore)
        if where.consent is not None:  # the join only when the filter needs it
            counted = counted.join(Membership, Membership.id == MemberScore.member_id)
        total = session.scalar(counted.where(*conditions))
    after = _cursor(cursor)
    page = joined.where(*conditions)
    if after is not None:
        clv, member_id = after
        page = page.where(
            or_(
                MemberScore.clv < clv,
                and_(MemberScore.clv == clv, MemberScore.member_id > member_id),
            )
        )
    found = session.execute(
        page.order_by(MemberScore.clv.desc(), MemberScore.member_id).limit(limit + 1)
    ).all()
    rows = [MemberRow(score, bool(consent), last) for score, consent, last in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last_row = rows[-1].score
        next_cursor = f"{last_row.clv}:{last_row.member_id}"
    return rows, int(total or 0), next_cursor
