"""The merchant's dashboard numbers: this period against the last, visits per day, new and
returning members, value distribution. Read-only; days are the merchant's local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from babel.numbers import get_currency_precision
from sqlalchemy import Integer, case, cast, distinct, func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics.models import MemberScore
from o2oloop.analytics.service import Slot, slots_from_counts
from o2oloop.auth.principal import Principal, require_merchant_staff
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.customers.models import Membership
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Merchant, Store
from o2oloop.visits.models import Visit

CHART_DAYS = 28
MEMBER_WEEKS = 8
# CLV buckets in major units of the merchant's currency (the last one is open-ended).
CLV_EDGES = (0, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True, slots=True)
class Totals:
    redemptions: int
    visits: int
    revenue: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """A period so far against the same span of the period before."""

    current: Totals
    previous: Totals


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    visits: int
    revenue: int


@dataclass(frozen=True, slots=True)
class MemberWeek:
    starts: date
    new: int
    returning: int


@dataclass(frozen=True, slots=True)
class Bucket:
    low: int  # minor units
    high: int | None
    members: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    merchant: Merchant
    now: datetime
    today: Comparison
    week: Comparison
    days: list[Day]
    member_weeks: list[MemberWeek]
    clv: list[Bucket]


def _totals(session: Session, merchant_id: str, start: datetime, end: datetime) -> Totals:
    visits, revenue = session.execute(
        select(func.count(), func.coalesce(func.sum(Visit.amount), 0)).where(
            Visit.merchant_id == merchant_id, Visit.occurred_at >= start, Visit.occurred_at < end
        )
    ).one()
    redemptions = session.scalar(
        select(func.count()).where(
            Redemption.merchant_id == merchant_id,
            Redemption.state == RedemptionState.REDEEMED,
            Redemption.redeemed_at >= start,
            Redemption.redeemed_at < end,
        )
    )
    return Totals(redemptions=int(redemptions or 0), visits=int(visits), revenue=int(revenue))


def _local_day(session: Session, column: Any, zone: ZoneInfo, now: datetime) -> Any:
    """The merchant-local calendar day of a UTC column, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(zone.key, column))
    offset = now.astimezone(zone).utcoffset() or timedelta()
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def _days(session: Session, merchant_id: str, zone: ZoneInfo, now: datetime) -> list[Day]:
    today = now.astimezone(zone).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    day = _local_day(session, Visit.occurred_at, zone, now)
    rows = session.execute(
        select(day, func.count(), func.coalesce(func.sum(Visit.amount), 0))
        .where(
            Visit.merchant_id == merchant_id,
            Visit.occurred_at >= _midnight(first, zone),
            Visit.occurred_at < now,
        )
        .group_by(day)
    ).all()
    found = {_as_date(d): (int(n), int(r)) for d, n, r in rows}
    return [
        Day(first + timedelta(days=i), *found.get(first + timedelta(days=i), (0, 0)))
        for i in range(CHART_DAYS)
    ]


def _week_index(session: Session, column: Any, start: datetime) -> Any:
    """Whole weeks from `start` to a UTC column, in SQL (a DST change shifts it an hour)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(func.extract("epoch", column - start) / 604800)
    naive = start.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return cast((func.julianday(column) - func.julianday(naive)) / 7, Integer)


def _member_weeks(
    session: Session, merchant_id: str, zone: ZoneInfo, now: datetime
) -> list[MemberWeek]:
    """Per week: members whose first visit it was, and members who had come before.

    Two grouped counts, no join: the members who visited in a week, and the members whose
    first visit fell in it (who visited that week by definition); the rest returned."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=MEMBER_WEEKS - 1)
    start = _midnight(first_monday, zone)
    visit_week = _week_index(session, Visit.occurred_at, start)
    visiting = dict(
        session.execute(
            select(visit_week, func.count(distinct(Visit.member_id)))
            .where(
                Visit.merchant_id == merchant_id,
                Visit.occurred_at >= start,
                Visit.occurred_at < now,
                Visit.member_id.is_not(None),
            )
            .group_by(visit_week)
        ).all()
    )
    first_week = _week_index(session, Membership.first_visit_at, start)
    joined = dict(
        session.execute(
            select(first_week, func.count())
            .where(
                Membership.merchant_id == merchant_id,
                Membership.first_visit_at >= start,
                Membership.first_visit_at < now,
            )
            .group_by(first_week)
        ).all()
    )
    weeks = []
    for index in range(MEMBER_WEEKS):
        members = int(visiting.get(index, 0) or 0)
        new = min(int(joined.get(index, 0) or 0), members)
        weeks.append(
            MemberWeek(
                starts=first_monday + timedelta(weeks=index), new=new, returning=members - new
            )
        )
    return weeks


def store_load(
    session: Session, *, principal: Principal, merchant_id: str, store: Store, weeks: int = 8
) -> list[Slot]:
    """Average visits per store-local weekday × hour over the last `weeks` weeks against
    capacity, counted in SQL (the dashboard shows every store on every load)."""
    require_merchant_staff(principal, merchant_id)
    if store.merchant_id != merchant_id:
        raise NotFound("no store with this id")
    zone = ZoneInfo(store.timezone)
    now = clock.now()
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone(zone.key, Visit.occurred_at)
        weekday = cast(func.extract("isodow", local), Integer) - 1
        hour = cast(func.extract("hour", local), Integer)
    else:
        offset = now.astimezone(zone).utcoffset() or timedelta()
        shift = f"{int(offset.total_seconds() // 60):+d} minutes"
        # strftime's %w counts from Sunday = 0; Monday = 0 here.
        weekday = (cast(func.strftime("%w", Visit.occurred_at, shift), Integer) + 6) % 7
        hour = cast(func.strftime("%H", Visit.occurred_at, shift), Integer)
    counts = np.zeros((7, 24), dtype=np.int64)
    for d, h, n in session.execute(
        select(weekday, hour, func.count())
        .where(
            Visit.store_id == store.id,
            Visit.merchant_id == merchant_id,
            Visit.occurred_at >= now - timedelta(weeks=weeks),
            Visit.occurred_at < now,
        )
        .group_by(weekday, hour)
    ):
        counts[int(d), int(h)] = int(n)
    return slots_from_counts(
        counts,
        weeks=float(weeks),
        opening_hours=store.opening_hours,
        capacity_per_hour=store.capacity_per_hour,
        capacity_overrides=store.capacity_overrides,
    )


def _clv(session: Session, merchant_id: str, unit: int) -> list[Bucket]:
    edges = [e * unit for e in CLV_EDGES]
    bucket = case(
        *[(MemberScore.clv < high, i) for i, high in enumerate(edges[1:])], else_=len(edges) - 1
    )
    rows = session.execute(
        select(bucket, func.count()).where(MemberScore.merchant_id == merchant_id).group_by(bucket)
    ).all()
    counts = {int(i): int(n) for i, n in rows}
    return [
        Bucket(low=low, high=edges[i + 1] if i + 1 < len(edges) else None, members=counts.get(i, 0))
        for i, low in enumerate(edges)
    ]


def dashboard(session: Session, *, principal: Principal, merchant_id: str) -> Dashboard:
    require_merchant_staff(principal, merchant_id)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    zone = ZoneInfo(merchant.timezone)
    # "So far" includes this very moment: a payment recorded now counts now.
    now = clock.now() + timedelta(microseconds=1)
    local_today = now.astimezone(zone).date()
    today_start = _midnight(local_today, zone)
    monday = _midnight(local_today - timedelta(days=local_today.weekday()), zone)
    day, week = timedelta(days=1), timedelta(weeks=1)
    return Dashboard(
        merchant=merchant,
        now=now,
        today=Comparison(
            _totals(session, merchant_id, today_start, now),
            _totals(session, merchant_id, today_start - day, now - day),
        ),
        week=Comparison(
            _totals(session, merchant_id, monday, now),
            _totals(session, merchant_id, monday - week, now - week),
        ),
        days=_days(session, merchant_id, zone, now),
        member_weeks=_member_weeks(session, merchant_id, zone, now),
        clv=_clv(session, merchant_id, 10 ** get_currency_precision(merchant.currency)),
    )
