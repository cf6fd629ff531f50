"""Launching and the lifecycle, and recording targets: who an occurrence reaches, in both arms.

Targets are written set-based: the audience is one SELECT, the arms one keyed hash per
consumer, the pre-period covariates one GROUP BY, and the rows one bulk INSERT … ON CONFLICT
DO NOTHING on (campaign, consumer, occurrence), so running it twice records nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal
from o2oloop.campaigns import holdout
from o2oloop.campaigns.audience import audience_query
from o2oloop.campaigns.bulk import insert_rows
from o2oloop.campaigns.models import (
    Arm,
    Campaign,
    CampaignState,
    CampaignTarget,
    TargetState,
    TriggerKind,
)
from o2oloop.campaigns.policy import Policy
from o2oloop.campaigns.service import (
    AudienceEmpty,
    audience_of,
    get_campaign,
    require_access,
    trigger_of,
)
from o2oloop.errors import Conflict
from o2oloop.offers.models import Offer, OfferState
from o2oloop.visits.models import Visit

ONCE = "launch"


@dataclass(frozen=True, slots=True)
class Targeted:
    candidates: int
    treatment: int
    control: int


def campaign_audience(session: Session, campaign: Campaign, now: datetime) -> Select:
    return audience_query(
        session,
        audience=audience_of(campaign),
        merchant_id=campaign.merchant_id,
        now=now,
        offer_id=campaign.offer_id,
        campaign_id=campaign.id,
    )


def record_targets(
    session: Session,
    *,
    campaign: Campaign,
    candidates: Select,
    occurrence: str,
    now: datetime,
    policy: Policy,
    store_id: str | None = None,
    max_treated: int | None = None,
) -> Targeted:
    """Record every candidate of one occurrence as a target, treatment or control.

    `candidates` selects member_id, consumer_id and optionally occurrence (per-consumer
    occurrences, e.g. the lapse an overdue trigger answers). `max_treated` caps the treated
    (a quiet slot's free capacity); the arms keep their proportions under it.
    """
    rows = session.execute(candidates).all()
    rows.sort(key=lambda r: r.consumer_id)
    if not rows:
        return Targeted(0, 0, 0)
    key = policy.holdout_key
    global_bps = policy.global_control_bps if campaign.use_global_control else 0
    arms = holdout.assign_many(
        key,
        campaign.id,
        (r.consumer_id for r in rows),
        holdout_bps=campaign.holdout_bps,
        global_control_bps=global_bps,
    )
    kept = list(zip(rows, arms, strict=True))
    if max_treated is not None:
        # Cut the (arm-blind) consumer order where the cap's last treated member falls, so
        # both arms are cut at the same point and keep their proportions (no sample-ratio
        # mismatch from the cap).
        treated = 0
        for position, (_, arm) in enumerate(kept):
            treated += arm is Arm.TREATMENT
            if treated > max_treated:
                kept = kept[:position]
                break
    pre = _pre_period(session, campaign, candidates, now)
    own_occurrence = "occurrence" in rows[0]._fields
    values = []
    for row, arm in kept:
        visits, spend = pre.get(row.consumer_id, (0, 0))
        values.append(
            {
                "consumer_id": row.consumer_id,
                "member_id": row.member_id,
                "occurrence": (own_occurrence and row.occurrence) or occurrence,
                "arm": arm.value,
                "state": "pending" if arm is Arm.TREATMENT else "held_out",
                "pre_visits": visits,
                "pre_spend": spend,
            }
        )
    insert_rows(
        session,
        CampaignTarget.__table__,
        values,
        constants={
            "campaign_id": campaign.id,
            "merchant_id": campaign.merchant_id,
            "targeted_at": now,
            "measure_until": now + timedelta(days=campaign.attribution_days),
            "store_id": store_id,
        },
        ignore_conflicts_on=["campaign_id", "consumer_id", "occurrence"],
    )
    treated = sum(1 for _, arm in kept if arm is Arm.TREATMENT)
    return Targeted(len(kept), treated, len(kept) - treated)


def _pre_period(
    session: Session, campaign: Campaign, candidates: Select, now: datetime
) -> dict[str, tuple[int, int]]:
    """Each candidate's visits and spend in the pre-period: the CUPED covariates."""
    ids = candidates.subquery()
    query = select(Visit.consumer_id, func.count(), func.coalesce(func.sum(Visit.amount), 0)).where(
        Visit.consumer_id.in_(select(ids.c.consumer_id)),
        Visit.occurred_at >= now - timedelta(days=campaign.pre_period_days),
        Visit.occurred_at < now,
    )
    if campaign.merchant_id is not None:
        query = query.where(Visit.merchant_id == campaign.merchant_id)
    rows = session.execute(query.group_by(Visit.consumer_id)).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _launch(session: Session, campaign: Campaign, now: datetime, policy: Policy) -> None:
    trigger = trigger_of(campaign)
    if campaign.ends_at is not None and campaign.ends_at <= now:
        raise Conflict("this campaign's end has already passed")
    offer_state = session.scalar(select(Offer.state).where(Offer.id == campaign.offer_id))
    if offer_state is not OfferState.PUBLISHED:  # its codes would be refused at the till
        raise Conflict(f"this campaign's offer is {offer_state}: publish it before launching")
    waiting = campaign.starts_at is not None and campaign.starts_at > now
    empty = AudienceEmpty("the audience matches nobody: widen its filters", field="audience")
    if trigger.kind is TriggerKind.SCHEDULE or (trigger.kind is TriggerKind.NOW and waiting):
        audience = campaign_audience(session, campaign, now).subquery()
        if not session.scalar(select(func.count()).select_from(audience)):
            raise empty
    campaign.launched_at = now
    campaign.state = CampaignState.SCHEDULED if waiting else CampaignState.RUNNING
    if trigger.kind is TriggerKind.NOW and not waiting:
        targeted = record_targets(
            session,
            campaign=campaign,
            candidates=campaign_audience(session, campaign, now),
            occurrence=ONCE,
            now=now,
            policy=policy,
        )
        if not targeted.candidates:  # the entry point's rollback undoes the launch
            raise empty


_MOVES = {
    "pause": ({CampaignState.RUNNING, CampaignState.SCHEDULED}, CampaignState.PAUSED),
    "resume": ({CampaignState.PAUSED}, CampaignState.RUNNING),
    "finish": (
        {CampaignState.DRAFT, CampaignState.RUNNING, CampaignState.SCHEDULED, CampaignState.PAUSED},
        CampaignState.FINISHED,
    ),
}


def transition(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str | None,
    campaign_id: str,
    action: str,
    policy: Policy,
) -> Campaign:
    require_access(principal, merchant_id, write=True)
    campaign = get_campaign(
        session, principal=principal, merchant_id=merchant_id, campaign_id=campaign_id
    )
    now = clock.now()
    if action == "launch":
        if campaign.state is not CampaignState.DRAFT:
            raise Conflict(f"only a draft is launched; this campaign is {campaign.state.value}")
        _launch(session, campaign, now, policy)
    else:
        allowed, target = _MOVES[action]
        if campaign.state not in allowed:
            raise Conflict(f"cannot {action} a {campaign.state.value} campaign")
        if action == "resume" and campaign.starts_at is not None and campaign.starts_at > now:
            target = CampaignState.SCHEDULED
        campaign.state = target
        if target is CampaignState.FINISHED:
            finish(session, campaign, now, reason="finished by the merchant")
    campaign.updated_at = now
    session.flush()
    return campaign


def finish(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    reason: str,
    skip_reason: str = "campaign_finished",
) -> None:
    """Finish: no more sends; whoever is still pending is recorded as a skip."""
    campaign.state = CampaignState.FINISHED
    campaign.finished_at = now
    campaign.finish_reason = reason[:40]
    pending = (
        select(CampaignTarget.id)
        .where(CampaignTarget.campaign_id == campaign.id)
        .where(CampaignTarget.state == TargetState.PENDING)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows a sender holds are left to it: it finds the campaign finished and skips them.
        # Waiting for them here, while holding the campaign's row, would be a deadlock.
        pending = pending.with_for_update(skip_locked=True)
    session.execute(
        update(CampaignTarget)
        .where(CampaignTarget.id.in_(pending.scalar_subquery()))
        .values(state=TargetState.SKIPPED, skip_reason=skip_reason)
        .execution_options(synchronize_session=False)
    )
