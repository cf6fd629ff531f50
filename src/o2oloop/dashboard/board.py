"""The merchant's dashboard numbers: this period against the last, visits per day, new and
returning members, value distribution, store load. Read-only; days are the merchant's.

Complete hours come from the hourly aggregate (`store_hours`, a few thousand rows however
many visits there are); only the hour now running is counted from the visits themselves,
so a payment recorded a moment ago shows at once, before the worker has counted it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics import summary
from o2oloop.analytics.service import Slot, slots_from_counts
from o2oloop.auth.principal import Principal, require_merchant_staff
from o2oloop.dashboard.hours import Counts, count_range, hour_of, week_of
from o2oloop.dashboard.models import StoreHour
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Merchant, Store

CHART_DAYS = 28
MEMBER_WEEKS = 8


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
class Dashboard:
    merchant: Merchant
    now: datetime
    today: Comparison
    week: Comparison
    days: list[Day]
    member_weeks: list[MemberWeek]
    clv: list[summary.Band]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


@dataclass(frozen=True, slots=True)
class _Span:
    """[start, end) split at the hour now running: complete hours, then the rest."""

    start: datetime
    hours_end: datetime
    end: datetime


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> _Span:
    return _Span(start, max(start, hour_of(end, zone)), end)


def _summed(session: Session, merchant_id: str, start: datetime, end: datetime) -> Counts:
    row = session.execute(
        select(
            *(
                func.coalesce(func.sum(column), 0)
                for column in (
                    StoreHour.visits,
                    StoreHour.revenue,
                    StoreHour.redemptions,
                    StoreHour.new_members,
                    StoreHour.returning_members,
                )
            )
        ).where(
            StoreHour.merchant_id == merchant_id,
            StoreHour.starts_at >= start,
            StoreHour.starts_at < end,
        )
    ).one()
    return Counts(*(int(n) for n in row))


def _running(
    session: Session, merchant_id: str, span: _Span, zone: ZoneInfo, *, members: bool = False
) -> Counts:
    """The part of the hour now running, from the visits (a handful of rows)."""
    if span.end <= span.hours_end:
        return Counts()
    return count_range(
        session,
        merchant_id=merchant_id,
        start=span.hours_end,
        end=span.end,
        week_start=week_of(span.hours_end, zone),
        members=members,
    )


def _totals(
    session: Session,
    merchant_id: str,
    span: _Span,
    zone: ZoneInfo,
    running: Counts | None = None,
) -> Totals:
    """Complete hours from the aggregate, the running one from the visits (given when the
    caller has counted it already: today and this week end in the same hour)."""
    if running is None:
        running = _running(session, merchant_id, span, zone)
    counts = _summed(session, merchant_id, span.start, span.hours_end) + running
    return Totals(redemptions=counts.redemptions, visits=counts.visits, revenue=counts.revenue)


def _by_day(
    session: Session, merchant_id: str, start: datetime, end: datetime
) -> dict[date, Counts]:
    rows = session.execute(
        select(
            StoreHour.local_date,
            func.sum(StoreHour.visits),
            func.sum(StoreHour.revenue),
            func.sum(StoreHour.new_members),
            func.sum(StoreHour.returning_members),
        )
        .where(
            StoreHour.merchant_id == merchant_id,
            StoreHour.starts_at >= start,
            StoreHour.starts_at < end,
        )
        .group_by(StoreHour.local_date)
    ).all()
    return {
        day: Counts(visits=int(v), revenue=int(r), new_members=int(n), returning_members=int(b))
        for day, v, r, n, b in rows
    }


def _days(
    session: Session, merchant_id: str, zone: ZoneInfo, now: datetime, running: Counts
) -> list[Day]:
    today = now.astimezone(zone).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    found = _by_day(session, merchant_id, _midnight(first, zone), hour_of(now, zone))
    found[today] = found.get(today, Counts()) + running
    days = []
    for i in range(CHART_DAYS):
        counts = found.get(first + timedelta(days=i), Counts())
        days.append(Day(first + timedelta(days=i), counts.visits, counts.revenue))
    return days


def _member_weeks(
    session: Session, merchant_id: str, zone: ZoneInfo, now: datetime, running: Counts
) -> list[MemberWeek]:
    """Per week: members whose first visit it was, and members who had come before; each
    hour of the aggregate counts a member in their first visit of the week."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=MEMBER_WEEKS - 1)
    new, returning = [0] * MEMBER_WEEKS, [0] * MEMBER_WEEKS
    found = _by_day(session, merchant_id, _midnight(first_monday, zone), hour_of(now, zone))
    found[today] = found.get(today, Counts()) + running
    for day, counts in found.items():
        index = (day - first_monday).days // 7
        if 0 <= index < MEMBER_WEEKS:
            new[index] += counts.new_members
            returning[index] += counts.returning_members
    return [
        MemberWeek(starts=first_monday + timedelta(weeks=i), new=new[i], returning=returning[i])
        for i in range(MEMBER_WEEKS)
    ]


def store_load(
    session: Session, *, principal: Principal, merchant_id: str, store: Store, weeks: int = 8
) -> list[Slot]:
    """Average visits per store-local weekday × hour over the last `weeks` weeks of complete
    hours against capacity, from the aggregate (at most 168 rows per week)."""
    require_merchant_staff(principal, merchant_id)
    if store.merchant_id != merchant_id:
        raise NotFound("no store with this id")
    now = clock.now()
    counts = np.zeros((7, 24), dtype=np.int64)
    for d, h, n in session.execute(
        select(StoreHour.weekday, StoreHour.hour, func.sum(StoreHour.visits))
        .where(
            StoreHour.store_id == store.id,
            StoreHour.starts_at >= now - timedelta(weeks=weeks),
            StoreHour.starts_at < now,
        )
        .group_by(StoreHour.weekday, StoreHour.hour)
    ):
        counts[int(d), int(h)] = int(n)
    return slots_from_counts(
        counts,
        weeks=float(weeks),
        opening_hours=store.opening_hours,
        capacity_per_hour=store.capacity_per_hour,
        capacity_overrides=store.capacity_overrides,
    )


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
    today = _span(today_start, now, zone)
    running = _running(session, merchant_id, today, zone, members=True)
    return Dashboard(
        merchant=merchant,
        now=now,
        today=Comparison(
            _totals(session, merchant_id, today, zone, running),
            _totals(session, merchant_id, _span(today_start - day, now - day, zone), zone),
        ),
        week=Comparison(
            _totals(session, merchant_id, _span(monday, now, zone), zone, running),
            _totals(session, merchant_id, _span(monday - week, now - week, zone), zone),
        ),
        days=_days(session, merchant_id, zone, now, running),
        member_weeks=_member_weeks(session, merchant_id, zone, now, running),
        clv=summary.clv_bands(session, merchant_id, merchant.currency),
    )
