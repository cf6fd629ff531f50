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
from sqlalchemy import Float, Numeric, and_, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

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


@dataclass(frozen=True, slots=True)
class ArmSums:
    """One arm's members and the sufficient statistics of its two outcomes."""

    members: int
    visits: stats.Moments  # y: visits in the window, x: pre-period visits
    revenue: stats.Moments  # y: spend in the window, x: pre-period spend

    @classmethod
    def of(cls, data: Outcomes, arm: str) -> ArmSums:
        mask = data.arm == arm
        return cls(
            int(mask.sum()),
            stats.Moments.of(data.visits[mask], data.pre_visits[mask]),
            stats.Moments.of(data.revenue[mask], data.pre_spend[mask]),
        )


def _square(column: Any, dialect: str) -> Any:
    """column²: exact NUMERIC on PostgreSQL; a float on SQLite, whose integer SUM would
    overflow on a million members' squared spend in minor units."""
    kind = Numeric() if dialect == "postgresql" else Float()
    return cast(column, kind) * column


def _not_indexed(column: Any, dialect: str) -> Any:
    """On SQLite, `+column`: its planner, without statistics, would read each target's
    window through the (merchant, time) index — every visit of the merchant in the window,
    for every target, quadratic — instead of the consumer's own visits."""
    if dialect != "sqlite":
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _float(column: Any, dialect: str) -> Any:
    """column as exact NUMERIC on PostgreSQL, a float on SQLite (see `_square`)."""
    return cast(column, Numeric() if dialect == "postgresql" else Float())


def arm_sums(session: Session, campaign: Campaign) -> dict[str, ArmSums]:
    """Per arm, from the database: n, Σy, Σy², Σx, Σx², Σxy of each target's visits and
    spend inside its window (the consumer's visits at the merchant from targeting until
    `measure_until`). A few rows leave the database, whatever the audience's size.

    A target without visits in its window adds only to n, Σx and Σx², so those come from
    the targets alone, and the y sums only from the targets the visits reach: the per-target
    grouping covers the members who came back, not the whole audience (most of whom did not)."""
    dialect = session.get_bind().dialect.name
    t, v = CampaignTarget, Visit
    covariates = {
        str(row[0]): row[1:]
        for row in session.execute(
            select(
                t.arm,
                func.count(),
                func.sum(t.pre_visits),
                func.sum(t.pre_visits * t.pre_visits),
                func.sum(t.pre_spend),
                func.sum(_square(t.pre_spend, dialect)),
            )
            .where(t.campaign_id == campaign.id)
            .group_by(t.arm)
        )
    }
    on = [
        v.consumer_id == t.consumer_id,
        v.occurred_at >= t.targeted_at,
        v.occurred_at < t.measure_until,
    ]
    if campaign.merchant_id is not None:
        on.append(_not_indexed(v.merchant_id, dialect) == campaign.merchant_id)
    # Grouped by (state, id), the order of the (campaign, state) index: no sort on SQLite;
    # the other columns depend on the id (PostgreSQL knows it from the primary key).
    per = (
        select(
            t.arm.label("arm"),
            t.pre_visits.label("x1"),
            t.pre_spend.label("x2"),
            func.count(v.id).label("y1"),
            func.sum(v.amount).label("y2"),
        )
        .select_from(t)
        .join(v, and_(*on))
        .where(t.campaign_id == campaign.id)
        .group_by(t.state, t.id)
        .subquery()
    )
    c = per.c
    outcomes = {
        str(row[0]): row[1:]
        for row in session.execute(
            select(
                c.arm,
                func.sum(c.y1),
                func.sum(c.y1 * c.y1),
                func.sum(c.x1 * c.y1),
                func.sum(c.y2),
                func.sum(_square(c.y2, dialect)),
                func.sum(_float(c.x2, dialect) * c.y2),
            ).group_by(c.arm)
        )
    }
    out = {}
    for arm, (n, sx1, sxx1, sx2, sxx2) in covariates.items():
        sy1, syy1, sxy1, sy2, syy2, sxy2 = outcomes.get(arm, (0,) * 6)
        n = int(n)
        out[Arm(arm).value] = ArmSums(
            n,
            stats.Moments.from_sums(n, sy1, syy1, sx1, sxx1, sxy1),
            stats.Moments.from_sums(n, sy2, syy2, sx2, sxx2, sxy2),
        )
    return out


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
    """The statistics of one campaign's per-target outcomes (pure: arrays in, numbers out)."""
    arms = {a.value: ArmSums.of(data, a.value) for a in Arm}
    return measure_sums(arms, control_share=control_share)


def measure_sums(arms: dict[str, ArmSums], *, control_share: float) -> dict[str, Any]:
    """SRM, and raw and CUPED lifts of visits and revenue, from each arm's sums."""
    empty = ArmSums(0, stats.Moments.of(np.zeros(0)), stats.Moments.of(np.zeros(0)))
    treat = arms.get(Arm.TREATMENT.value, empty)
    control = arms.get(Arm.CONTROL.value, empty)
    measured: dict[str, Any] = {"srm": None, "visits": None, "revenue": None}
    if treat.members == 0 or control.members == 0:
        return measured
    srm = stats.sample_ratio_mismatch(treat.members, control.members, control_share=control_share)
    measured["srm"] = {
        "chi_square": srm.chi_square,
        "p_value": srm.p_value,
        "mismatch": srm.mismatch,
    }
    for name in ("visits", "revenue"):
        t, c = getattr(treat, name), getattr(control, name)
        adjusted = stats.cuped_of(t, c)
        measured[name] = {
            "raw": _lift_dict(stats.lift_of(t, c)),
            "cuped": _lift_dict(adjusted.lift) | {"theta": adjusted.theta},
            "variance_reduction": adjusted.variance_reduction,
        }
    return measured


def _costs(session: Session, campaign: Campaign) -> dict[str, int]:
    """Codes issued, still active and redeemed (with their discounts), and messages: one
    pass over the campaign's targets that hold a code, one over its messages."""
    t, code, r = CampaignTarget, Code, Redemption
    codes = session.execute(
        select(
            func.count(t.code_id),
            func.count(code.id).filter(code.state == CodeState.ACTIVE),
            func.count(r.id),
            func.coalesce(func.sum(r.discount_amount), 0),
        )
        .select_from(t)
        .outerjoin(code, code.id == t.code_id)
        .outerjoin(r, and_(r.code_id == t.code_id, r.state == RedemptionState.REDEEMED))
        .where(t.campaign_id == campaign.id, t.code_id.is_not(None))
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
    return {
        "claimed": int(codes[0]),
        "redeemed": int(codes[2]),
        "active_codes": int(codes[1]),
        "discount_cost": int(codes[3]),
        "messages": int(messages[0]),
        "delivered": int(messages[2]),
        "message_cost": int(messages[1]),
    }


def campaign_results(session: Session, *, campaign: Campaign) -> dict[str, Any]:
    """Audience, sends, funnel, arms, lift with 95 % intervals (raw and CUPED), SRM, ROI."""
    sums = arm_sums(session, campaign)
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
        got = sums.get(arm.value)
        n = got.members if got else 0
        visits = round(got.visits.mean_y * n) if got else 0
        revenue = round(got.revenue.mean_y * n) if got else 0
        arms.append(
            {
                "arm": arm.value,
                "members": n,
                "visits": visits,
                "revenue": revenue,
                "visits_per_member": got.visits.mean_y if got else 0.0,
                "revenue_per_member": got.revenue.mean_y if got else 0.0,
            }
        )
    costs = _costs(session, campaign)
    margin = campaign.gross_margin_bps / 10_000
    measured = (
        measure_sums(sums, control_share=campaign.holdout_bps / 10_000)
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
        "audience": sum(a.members for a in sums.values()),
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
