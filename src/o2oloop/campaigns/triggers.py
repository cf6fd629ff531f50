"""Triggers: when each campaign reaches whom. Pure decisions first, then the use cases.

Every trigger names its occurrence, so the unique (campaign, consumer, occurrence) target
makes a second evaluation of the same moment a no-op: a schedule's local date, the lapse an
overdue member is in (the date of their last visit), a birthday's year, a quiet slot's store
and hour, the SegmentChanged event that moved a member.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop.analytics.events import SegmentChanged
from o2oloop.analytics.models import MemberScore
from o2oloop.analytics.service import load_slots
from o2oloop.campaigns.audience import audience_query
from o2oloop.campaigns.launch import ONCE, campaign_audience, finish, record_targets
from o2oloop.campaigns.models import Arm, Campaign, CampaignState, CampaignTarget, TriggerKind
from o2oloop.campaigns.policy import Policy
from o2oloop.campaigns.schemas import Audience, NearStore, Trigger
from o2oloop.campaigns.service import audience_of, trigger_of
from o2oloop.customers.models import Consumer, Membership
from o2oloop.merchants.models import Merchant, Store
from o2oloop.visits.models import Visit

FIRST_VISIT_WINDOW = timedelta(days=7)  # a follow-up still goes out this late, not later
LOAD_WEEKS = 8

# ---- pure decisions ---------------------------------------------------------------------


def schedule_occurrence(trigger: Trigger, local_now: datetime) -> str | None:
    """The occurrence a schedule is due for at this local time, or None."""
    if trigger.weekdays is not None and local_now.weekday() not in trigger.weekdays:
        return None
    assert trigger.at is not None
    hour, minute = int(trigger.at[:2]), int(trigger.at[3:])
    if (local_now.hour, local_now.minute) < (hour, minute):
        return None
    return f"schedule:{local_now.date().isoformat()}"


def is_overdue(days_since_last: float, cycle_days: float | None, k: float) -> bool:
    """Overdue against the member's own buying cycle: more than k expected gaps since."""
    return cycle_days is not None and cycle_days > 0 and days_since_last > k * cycle_days


def first_visit_due(first_visit_at: datetime | None, now: datetime, days: int) -> bool:
    """N days after a first visit, within a week of that moment (so a late run still sends)."""
    if first_visit_at is None:
        return False
    due = first_visit_at + timedelta(days=days)
    return due <= now < due + FIRST_VISIT_WINDOW


def is_birthday(birthday: date | None, today: date) -> bool:
    """A 29 February birthday is kept on 28 February in other years."""
    if birthday is None:
        return False
    if birthday.month == 2 and birthday.day == 29:
        leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
        return (today.month, today.day) == ((2, 29) if leap else (2, 28))
    return (today.month, today.day) == (birthday.month, birthday.day)


@dataclass(frozen=True, slots=True)
class QuietSlot:
    starts_local: datetime
    free: int


def quiet_slot(
    slots: list, local_now: datetime, *, hours_ahead: int, below: float
) -> QuietSlot | None:
    """The next open hour within `hours_ahead` whose forecast load is below `below` of its
    capacity, with its free capacity (capacity minus forecast visits)."""
    by_key = {(s.weekday, s.hour): s for s in slots}
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start = local_now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for step in range(hours_ahead):
        moment = start + timedelta(hours=step)
        slot = by_key[(names[moment.weekday()], moment.hour)]
        if slot.open and slot.utilisation is not None and slot.utilisation < below:
            free = math.floor(slot.capacity - slot.average_visits)
            if free > 0:
                return QuietSlot(moment, free)
    return None


# ---- use cases --------------------------------------------------------------------------


@dataclass
class RunReport:
    evaluated: int = 0
    targeted: int = 0
    started: int = 0
    finished: int = 0
    by_campaign: dict[str, int] = field(default_factory=dict)


def _zone(session: Session, campaign: Campaign) -> ZoneInfo:
    merchant = session.get(Merchant, campaign.merchant_id) if campaign.merchant_id else None
    return ZoneInfo(merchant.timezone if merchant is not None else "UTC")


def run_due_campaigns(session: Session, *, now: datetime, policy: Policy) -> RunReport:
    """Start what is due, finish what has ended, and evaluate every running trigger once.

    Sending is `send.send_pending`, run after this in batches of its own transactions.
    """
    report = RunReport()
    live = session.scalars(
        select(Campaign)
        .where(Campaign.state.in_([CampaignState.SCHEDULED, CampaignState.RUNNING]))
        .order_by(Campaign.id)
    ).all()
    for campaign in live:
        if campaign.ends_at is not None and campaign.ends_at <= now:
            finish(session, campaign, now, reason="ended")
            report.finished += 1
            continue
        if campaign.state is CampaignState.SCHEDULED:
            if campaign.starts_at is not None and campaign.starts_at > now:
                continue
            campaign.state = CampaignState.RUNNING
            report.started += 1
        report.evaluated += 1
        targeted = evaluate(session, campaign=campaign, now=now, policy=policy)
        report.targeted += targeted
        report.by_campaign[campaign.id] = targeted
    session.flush()
    return report


def evaluate(session: Session, *, campaign: Campaign, now: datetime, policy: Policy) -> int:
    """Record the targets this campaign's trigger is due for now; returns how many."""
    trigger = trigger_of(campaign)
    zone = _zone(session, campaign)
    local = now.astimezone(zone)
    kind = trigger.kind
    if kind is TriggerKind.NOW:
        # Once, at launch (or at the start of a scheduled launch): later members do not join.
        if session.scalar(
            select(CampaignTarget.id).where(CampaignTarget.campaign_id == campaign.id).limit(1)
        ):
            return 0
        occurrence, candidates = ONCE, campaign_audience(session, campaign, now)
    elif kind is TriggerKind.SCHEDULE:
        due = schedule_occurrence(trigger, local)
        if due is None:
            return 0
        occurrence, candidates = due, campaign_audience(session, campaign, now)
    elif kind is TriggerKind.OVERDUE:
        return _overdue(session, campaign, trigger, now, policy)
    elif kind is TriggerKind.AFTER_FIRST_VISIT:
        return _first_visit(session, campaign, trigger, now, policy)
    elif kind is TriggerKind.BIRTHDAY:
        return _birthday(session, campaign, local.date(), now, policy)
    elif kind is TriggerKind.QUIET_SLOT:
        return _quiet_slot(session, campaign, trigger, now, local, policy)
    else:  # segment_entered reacts to SegmentChanged events
        return 0
    return record_targets(
        session,
        campaign=campaign,
        candidates=candidates,
        occurrence=occurrence,
        now=now,
        policy=policy,
    ).candidates


def _members_where(session: Session, campaign: Campaign, now: datetime, ids: list[str]):
    audience = campaign_audience(session, campaign, now).subquery()
    return select(audience.c.member_id, audience.c.consumer_id).where(audience.c.member_id.in_(ids))


def _overdue(session, campaign, trigger, now, policy) -> int:
    audience = campaign_audience(session, campaign, now).subquery()
    rows = session.execute(
        select(
            audience.c.member_id,
            Membership.last_visit_at,
            MemberScore.buying_cycle_days,
        )
        .join(Membership, Membership.id == audience.c.member_id)
        .join(MemberScore, MemberScore.member_id == audience.c.member_id)
        .where(Membership.last_visit_at.is_not(None))
    ).all()
    due = [
        r
        for r in rows
        if is_overdue(
            (now - r.last_visit_at).total_seconds() / 86400, r.buying_cycle_days, trigger.k
        )
    ]
    return _record_each(
        session, campaign, now, policy, due, lambda r: f"overdue:{r.last_visit_at.date()}"
    )


def _record_each(session, campaign, now, policy, rows, occurrence_of) -> int:
    if not rows:
        return 0
    by_occurrence: dict[str, list[str]] = {}
    for r in rows:
        by_occurrence.setdefault(occurrence_of(r), []).append(r.member_id)
    total = 0
    for occurrence, ids in by_occurrence.items():
        for start in range(0, len(ids), 5000):
            total += record_targets(
                session,
                campaign=campaign,
                candidates=_members_where(session, campaign, now, ids[start : start + 5000]),
                occurrence=occurrence,
                now=now,
                policy=policy,
            ).candidates
    return total


def _first_visit(session, campaign, trigger, now, policy) -> int:
    audience = campaign_audience(session, campaign, now).subquery()
    earliest = now - timedelta(days=trigger.days) - FIRST_VISIT_WINDOW
    latest = now - timedelta(days=trigger.days)
    rows = session.execute(
        select(audience.c.member_id, Membership.first_visit_at)
        .join(Membership, Membership.id == audience.c.member_id)
        .where(Membership.first_visit_at > earliest, Membership.first_visit_at <= latest)
    ).all()
    due = [r for r in rows if first_visit_due(r.first_visit_at, now, trigger.days)]
    return _record_each(session, campaign, now, policy, due, lambda r: "first_visit")


def _birthday(session, campaign, today: date, now, policy) -> int:
    audience = campaign_audience(session, campaign, now).subquery()
    rows = session.execute(
        select(audience.c.member_id, Consumer.birthday)
        .join(Consumer, Consumer.id == audience.c.consumer_id)
        .where(Consumer.birthday.is_not(None))
    ).all()
    due = [r for r in rows if is_birthday(r.birthday, today)]
    return _record_each(session, campaign, now, policy, due, lambda r: f"birthday:{today.year}")


def _quiet_slot(session, campaign, trigger, now, local, policy) -> int:
    stores = session.scalars(
        select(Store).where(Store.merchant_id == campaign.merchant_id, Store.active)
    ).all()
    if trigger.store_id is not None:
        stores = [s for s in stores if s.id == trigger.store_id]
    total = 0
    for store in stores:
        slot = _store_quiet_slot(session, store, now, trigger)
        if slot is None:
            continue
        audience = audience_of(campaign).model_copy(
            update={"near_store": NearStore(store_id=store.id, km=trigger.km or 3.0)}
        )
        candidates = audience_query(
            session,
            audience=Audience.model_validate(audience.model_dump()),
            merchant_id=campaign.merchant_id,
            now=now,
            offer_id=campaign.offer_id,
            campaign_id=campaign.id,
        )
        occurrence = f"slot:{store.id}:{slot.starts_local.strftime('%Y-%m-%dT%H')}"
        taken = session.scalar(
            select(func.count())
            .where(CampaignTarget.campaign_id == campaign.id)
            .where(CampaignTarget.occurrence == occurrence)
            .where(CampaignTarget.arm == Arm.TREATMENT)
        )
        if slot.free - (taken or 0) <= 0:
            continue
        total += record_targets(
            session,
            campaign=campaign,
            candidates=candidates,
            occurrence=occurrence,
            now=now,
            policy=policy,
            store_id=store.id,
            max_treated=slot.free - (taken or 0),
        ).candidates
    return total


def _store_quiet_slot(session, store: Store, now: datetime, trigger: Trigger) -> QuietSlot | None:
    zone = ZoneInfo(store.timezone)
    since = now - timedelta(weeks=LOAD_WEEKS)
    times = [
        at.astimezone(zone).replace(tzinfo=None)
        for at in session.scalars(
            select(Visit.occurred_at).where(
                Visit.store_id == store.id, Visit.occurred_at >= since, Visit.occurred_at < now
            )
        )
    ]
    slots = load_slots(
        times,
        weeks=float(LOAD_WEEKS),
        opening_hours=store.opening_hours,
        capacity_per_hour=store.capacity_per_hour,
        capacity_overrides=store.capacity_overrides,
    )
    return quiet_slot(
        slots,
        now.astimezone(zone).replace(tzinfo=None),
        hours_ahead=trigger.hours_ahead or 24,
        below=trigger.below or 0.3,
    )


def on_segment_changed(session: Session, event: SegmentChanged, *, policy: Policy) -> None:
    """A member entered a segment: every running campaign waiting for it targets them."""
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.merchant_id == event.merchant_id)
        .where(Campaign.state == CampaignState.RUNNING)
    ).all()
    for campaign in campaigns:
        trigger = trigger_of(campaign)
        if trigger.kind is not TriggerKind.SEGMENT_ENTERED or trigger.segment != event.after:
            continue
        record_targets(
            session,
            campaign=campaign,
            candidates=_members_where(session, campaign, event.occurred_at, [event.member_id]),
            occurrence=f"segment:{event.event_id}",
            now=event.occurred_at,
            policy=policy,
        )
