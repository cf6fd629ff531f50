"""Keeping the hourly aggregate: a store's hour is recounted from its visits and redemptions.

Recounting (instead of adding one) makes every handler idempotent by construction: a job
run twice, events handled out of order, or a backfill overlapping the live handlers all
end in the same row, the one `visits` and `redemptions` say. The row is locked before it
is counted, so two workers recounting one hour on PostgreSQL cannot lose a visit.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from o2oloop.codes.events import CodeRedeemed, RedemptionUndone
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.dashboard.models import StoreHour
from o2oloop.merchants.models import Merchant, Store
from o2oloop.visits.events import VisitRecorded
from o2oloop.visits.models import Visit

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Counts:
    visits: int = 0
    revenue: int = 0
    redemptions: int = 0
    new_members: int = 0
    returning_members: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def empty(self) -> bool:
        return not any(astuple(self))


def hour_of(moment: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the local hour holding `moment` began."""
    local = moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def week_of(moment: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the local Monday midnight that began `moment`'s week."""
    day = moment.astimezone(zone).date()
    return datetime.combine(day - timedelta(days=day.weekday()), time(), tzinfo=zone).astimezone(
        UTC
    )


def count_range(
    session: Session,
    *,
    merchant_id: str,
    start: datetime,
    end: datetime,
    week_start: datetime,
    store_id: str | None = None,
    members: bool = True,
) -> Counts:
    """What happened in [start, end), counted from the source tables.

    A member counts in the range if their first visit of the week (from `week_start`)
    lies in it: as new when they had never visited before the week, else as returning
    (left at zero with `members=False`, for totals that need no members)."""
    scope: list[Any] = [
        Visit.merchant_id == merchant_id,
        Visit.occurred_at >= start,
        Visit.occurred_at < end,
    ]
    redeemed: list[Any] = [
        Redemption.state == RedemptionState.REDEEMED,
        Redemption.redeemed_at >= start,
        Redemption.redeemed_at < end,
    ]
    if store_id is not None:
        scope.append(Visit.store_id == store_id)
        redeemed += [Redemption.merchant_id == merchant_id, Redemption.store_id == store_id]
    else:
        # By the merchant's stores alone: SQLite picks the (store_id, redeemed_at) index only
        # when no merchant_id condition tempts it into walking all the merchant's redemptions.
        stores = select(Store.id).where(Store.merchant_id == merchant_id).scalar_subquery()
        redeemed.append(Redemption.store_id.in_(stores))
    visits, revenue = session.execute(
        select(func.count(), func.coalesce(func.sum(Visit.amount), 0)).where(*scope)
    ).one()
    redemptions = session.scalar(select(func.count()).where(*redeemed))
    if not members:
        return Counts(visits=int(visits), revenue=int(revenue), redemptions=int(redemptions or 0))
    earlier, before = aliased(Visit), aliased(Visit)
    first_of_week = ~exists().where(
        earlier.member_id == Visit.member_id,
        earlier.occurred_at >= week_start,
        or_(
            earlier.occurred_at < Visit.occurred_at,
            and_(earlier.occurred_at == Visit.occurred_at, earlier.id < Visit.id),
        ),
    )
    came_before = exists().where(
        before.member_id == Visit.member_id, before.occurred_at < week_start
    )
    members, returning = session.execute(
        select(func.count(), func.coalesce(func.sum(case((came_before, 1), else_=0)), 0)).where(
            *scope, Visit.member_id.is_not(None), first_of_week
        )
    ).one()
    return Counts(
        visits=int(visits),
        revenue=int(revenue),
        redemptions=int(redemptions or 0),
        new_members=int(members) - int(returning),
        returning_members=int(returning),
    )


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(StoreHour)


def recount(session: Session, *, store_id: str, moment: datetime) -> Counts:
    """Recount the store-local hour holding `moment` and store it (no row when empty)."""
    store = session.get(Store, store_id)
    if store is None:
        return Counts()
    merchant = session.get(Merchant, store.merchant_id)
    assert merchant is not None
    zone = ZoneInfo(store.timezone)
    starts = hour_of(moment, zone)
    local = starts.astimezone(zone)
    key = (StoreHour.store_id == store_id, StoreHour.starts_at == starts)
    session.execute(
        _insert(session)
        .values(
            store_id=store_id,
            starts_at=starts,
            merchant_id=store.merchant_id,
            local_date=local.date(),
            weekday=local.weekday(),
            hour=local.hour,
        )
        .on_conflict_do_nothing()
    )
    # Taken before counting: a recount of this hour that began later waits and sees ours.
    session.execute(select(StoreHour.store_id).where(*key).with_for_update())
    counts = count_range(
        session,
        merchant_id=store.merchant_id,
        store_id=store_id,
        start=starts,
        end=starts + HOUR,
        week_start=week_of(starts, ZoneInfo(merchant.timezone)),
    )
    if counts.empty:
        session.execute(delete(StoreHour).where(*key))
    else:
        session.execute(
            update(StoreHour)
            .where(*key)
            .values(
                visits=counts.visits,
                revenue=counts.revenue,
                redemptions=counts.redemptions,
                new_members=counts.new_members,
                returning_members=counts.returning_members,
            )
        )
    return counts


def on_visit_recorded(session: Session, event: VisitRecorded) -> None:
    """The visit's hour, and the later hours of that member's week (a visit recorded
    with an earlier time can make it, not a later one, their first visit of the week)."""
    recount(session, store_id=event.store_id, moment=event.visited_at)
    if event.member_id is None:
        return
    merchant = session.get(Merchant, event.merchant_id)
    if merchant is None:
        return
    week_end = week_of(event.visited_at, ZoneInfo(merchant.timezone)) + timedelta(days=7)
    later = session.execute(
        select(Visit.store_id, Visit.occurred_at).where(
            Visit.member_id == event.member_id,
            Visit.occurred_at > event.visited_at,
            Visit.occurred_at < week_end,
        )
    ).all()
    for store_id, occurred_at in later:
        recount(session, store_id=store_id, moment=occurred_at)


def _recount_redemption(session: Session, store_id: str, redemption_id: str) -> None:
    redeemed_at = session.scalar(
        select(Redemption.redeemed_at).where(Redemption.id == redemption_id)
    )
    if redeemed_at is not None:
        recount(session, store_id=store_id, moment=redeemed_at)


def on_code_redeemed(session: Session, event: CodeRedeemed) -> None:
    _recount_redemption(session, event.store_id, event.redemption_id)


def on_redemption_undone(session: Session, event: RedemptionUndone) -> None:
    _recount_redemption(session, event.store_id, event.redemption_id)
