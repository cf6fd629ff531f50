"""Results per campaign and arm, recomputed from the facts whenever asked.

Each target is one unit: its outcome is the visits (and spend) of its consumer at the
merchant from targeting until the end of its attribution window, so results grow as visits
come in from the counter. The treatment arm is everyone assigned to it (sent or skipped:
intent to treat), so a skip never biases the comparison with the control arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from o2oloop.campaigns import stats
from o2oloop.campaigns.models import Arm, Campaign, CampaignTarget, TargetState
from o2oloop.codes.models import Code, CodeState, Redemption, RedemptionState
from o2oloop.notify.models import Message, MessageState
from o2oloop.visits.models import Visit


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per-target arrays, in one order: arm, pre-period visits and spend, outcomes."""

    arm: np.ndarray
    pre_visits: np.ndarray
    pre_spend: np.ndarray
    visits: np.ndarray
    revenue: np.ndarray


def outcomes(session: Session, campaign: Campaign) -> Outcomes:
    """One row per target: the consumer's visits and spend inside its window (one GROUP BY)."""
    t, v = CampaignTarget, Visit
    on = [
        v.consumer_id == t.consumer_id,
        v.occurred_at >= t.targeted_at,
        v.occurred_at < t.measure_until,
    ]
    if campaign.merchant_id is not None:
        on.append(v.merchant_id == campaign.merchant_id)
    query = (
        select(
            t.arm,
            t.pre_visits,
            t.pre_spend,
            func.count(v.id),
            func.coalesce(func.sum(v.amount), 0),
        )
        .select_from(t)
        .join(v, and_(*on), isouter=True)
        .where(t.campaign_id == campaign.id)
        .group_by(t.id, t.arm, t.pre_visits, t.pre_spend)
    )
    rows = session.execute(query).all()
    if not rows:
        empty = np.zeros(0)
        return Outcomes(np.zeros(0, dtype=object), empty, empty, empty, empty)
    frame = pl.DataFrame(
        rows, schema=["arm", "pre_visits", "pre_spend", "visits", "revenue"], orient="row"
    )
    return Outcomes(
        arm=np.array([a.value if isinstance(a, Arm) else a for a in frame["arm"].to_list()]),
        pre_visits=frame["pre_visits"].cast(pl.Float64).to_numpy(),
        pre_spend=frame["pre_spend"].cast(pl.Float64).to_numpy(),
        visits=frame["visits"].cast(pl.Float64).to_numpy(),
        revenue=frame["revenue"].cast(pl.Float64).to_numpy(),
    )


def _lift_dict(lift: stats.Lift) -> dict[str, Any]:
    return {
        "treatment_mean": lift.treatment_mean,
        "control_mean": lift.control_mean,
        "difference_per_member": lift.difference,
        "standard_error": lift.standard_error,
        "interval_95": [lift.low, lift.high],
        "incremental": lift.incremental,
        "incremental_interval_95": [lift.incremental_low, lift.incremental_high],
        "p_value": lift.p_value,
    }


def measure(data: Outcomes, *, control_share: float, gross_margin_share: float) -> dict[str, Any]:
    """The statistics of one campaign's outcomes (pure: arrays in, numbers out)."""
    treat, control = data.arm == Arm.TREATMENT.value, data.arm == Arm.CONTROL.value
    nt, nc = int(treat.sum()), int(control.sum())
    measured: dict[str, Any] = {
        "srm": None,
        "visits": None,
        "revenue": None,
    }
    if nt == 0 or nc == 0:
        return measured
    srm = stats.sample_ratio_mismatch(nt, nc, control_share=control_share)
    measured["srm"] = {
        "chi_square": srm.chi_square,
        "p_value": srm.p_value,
        "mismatch": srm.mismatch,
    }
    for name, outcome, covariate in (
        ("visits", data.visits, data.pre_visits),
        ("revenue", data.revenue, data.pre_spend),
    ):
        raw = stats.difference_in_means(outcome[treat], outcome[control])
        adjusted = stats.cuped(
            outcome[treat], outcome[control], covariate[treat], covariate[control]
        )
        measured[name] = {
            "raw": _lift_dict(raw),
            "cuped": _lift_dict(adjusted.lift) | {"theta": adjusted.theta},
            "variance_reduction": adjusted.variance_reduction,
        }
    return measured


def _costs(session: Session, campaign: Campaign) -> dict[str, int]:
    codes = select(CampaignTarget.code_id).where(
        CampaignTarget.campaign_id == campaign.id, CampaignTarget.code_id.is_not(None)
    )
    redeemed = session.execute(
        select(func.count(), func.coalesce(func.sum(Redemption.discount_amount), 0))
        .where(Redemption.code_id.in_(codes))
        .where(Redemption.state == RedemptionState.REDEEMED)
    ).one()
    messages = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Message.cost), 0),
            func.count().filter(Message.state == MessageState.DELIVERED),
        )
        .where(Message.campaign_id == campaign.id)
        .where(Message.state != MessageState.FAILED)
    ).one()
    claimed = session.scalar(select(func.count()).select_from(codes.subquery())) or 0
    active = session.scalar(
        select(func.count()).where(Code.id.in_(codes), Code.state == CodeState.ACTIVE)
    )
    return {
        "claimed": int(claimed),
        "redeemed": int(redeemed[0]),
        "active_codes": int(active or 0),
        "discount_cost": int(redeemed[1]),
        "messages": int(messages[0]),
        "delivered": int(messages[2]),
        "message_cost": int(messages[1]),
    }


def campaign_results(session: Session, *, campaign: Campaign) -> dict[str, Any]:
    """Audience, sends, funnel, arms, lift with 95 % intervals (raw and CUPED), SRM, ROI."""
    data = outcomes(session, campaign)
    states = dict(
        session.execute(
            select(CampaignTarget.state, func.count())
            .where(CampaignTarget.campaign_id == campaign.id)
            .group_by(CampaignTarget.state)
        ).all()
    )
    skips = dict(
        session.execute(
            select(CampaignTarget.skip_reason, func.count())
            .where(CampaignTarget.campaign_id == campaign.id)
            .where(CampaignTarget.state == TargetState.SKIPPED)
            .group_by(CampaignTarget.skip_reason)
        ).all()
    )
    arms = []
    for arm in Arm:
        mask = data.arm == arm.value
        n = int(mask.sum())
        visits, revenue = float(data.visits[mask].sum()), float(data.revenue[mask].sum())
        arms.append(
            {
                "arm": arm.value,
                "members": n,
                "visits": int(visits),
                "revenue": int(revenue),
                "visits_per_member": visits / n if n else 0.0,
                "revenue_per_member": revenue / n if n else 0.0,
            }
        )
    costs = _costs(session, campaign)
    margin = campaign.gross_margin_bps / 10_000
    measured = (
        measure(data, control_share=campaign.holdout_bps / 10_000, gross_margin_share=margin)
        if campaign.measured
        else {"srm": None, "visits": None, "revenue": None}
    )
    incremental_revenue = (
        measured["revenue"]["cuped"]["incremental"] if measured.get("revenue") else None
    )
    return {
        "campaign_id": campaign.id,
        "state": campaign.state.value,
        "currency": campaign.currency,
        "audience": int(data.arm.size),
        "sent": int(states.get(TargetState.SENT, 0)),
        "pending": int(states.get(TargetState.PENDING, 0)),
        "skipped": {str(k): int(n) for k, n in skips.items()},
        **costs,
        "arms": arms,
        **measured,
        "roi": stats.roi(
            incremental_revenue=incremental_revenue,
            gross_margin_share=margin,
            discount_cost=costs["discount_cost"],
            message_cost=costs["message_cost"],
        )
        if incremental_revenue is not None
        else None,
    }


def offer_funnel(
    session: Session, *, merchant_id: str, offer_id: str | None = None
) -> list[dict[str, Any]]:
    """Per offer and channel: claims → redemptions → revenue → repeat visits in 30/90 days.

    The channel of a code is its campaign's channel, or "direct" for a consumer's own claim.
    """
    query = (
        select(
            Code.id,
            Code.offer_id,
            Code.consumer_id,
            Campaign.channel,
            Redemption.redeemed_at,
            Redemption.bill_amount,
        )
        .select_from(Code)
        .outerjoin(CampaignTarget, CampaignTarget.code_id == Code.id)
        .outerjoin(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .outerjoin(
            Redemption,
            (Redemption.code_id == Code.id) & (Redemption.state == RedemptionState.REDEEMED),
        )
        .where(Code.merchant_id == merchant_id)
    )
    if offer_id is not None:
        query = query.where(Code.offer_id == offer_id)
    rows = session.execute(query).all()
    if not rows:
        return []
    codes = pl.DataFrame(
        [(r[1], r[2], r[3].value if r[3] is not None else "direct", r[4], r[5] or 0) for r in rows],
        schema=["offer_id", "consumer_id", "channel", "redeemed_at", "bill"],
        orient="row",
    )
    redeemers = codes.filter(pl.col("redeemed_at").is_not_null())
    visits = session.execute(
        select(Visit.consumer_id, Visit.occurred_at).where(
            Visit.merchant_id == merchant_id,
            Visit.consumer_id.in_(redeemers["consumer_id"].unique().to_list() or [""]),
        )
    ).all()
    later = pl.DataFrame(visits, schema=["consumer_id", "visit_at"], orient="row")
    joined = redeemers.with_row_index("rid").join(later, on="consumer_id", how="left")
    after = pl.col("visit_at") > pl.col("redeemed_at") + pl.duration(hours=1)
    repeat = joined.group_by("rid").agg(
        (after & (pl.col("visit_at") <= pl.col("redeemed_at") + pl.duration(days=30)))
        .any()
        .alias("r30"),
        (after & (pl.col("visit_at") <= pl.col("redeemed_at") + pl.duration(days=90)))
        .any()
        .alias("r90"),
    )
    redeemed = redeemers.with_row_index("rid").join(repeat, on="rid", how="left")
    claims = codes.group_by("offer_id", "channel").agg(pl.len().alias("claims"))
    funnel = redeemed.group_by("offer_id", "channel").agg(
        pl.len().alias("redemptions"),
        pl.col("bill").sum().alias("revenue"),
        pl.col("r30").fill_null(False).sum().alias("repeat_30d"),
        pl.col("r90").fill_null(False).sum().alias("repeat_90d"),
    )
    out = claims.join(funnel, on=["offer_id", "channel"], how="left").fill_null(0)
    return out.sort("offer_id", "channel").to_dicts()
