"""Referrals: a friend's claim through a share, and the sharer's reward for a verified visit.

Refused: a claim through one's own share (same consumer, so the sharer's own keys too), a
friend with the sharer's phone, a loop (the sharer was brought by this friend), a sharer who
was erased, and a redemption paid with the sharer's own membership. A reward is paid once
per redemption (unique), only below the sharer's cap for the period (a conditional UPDATE,
so concurrent redemptions never pay more), and only after the redemption committed.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant_admin,
    require_merchant_staff,
)
from o2oloop.channels.models import (
    Referral,
    ReferralProgram,
    ReferralReward,
    ReferralState,
    RewardKind,
    Share,
    SharerPeriod,
)
from o2oloop.channels.schemas import ReferralProgramIn
from o2oloop.codes import service as codes
from o2oloop.codes.events import CodeRedeemed
from o2oloop.codes.models import Code, Redemption, RedemptionState
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import Database, new_id
from o2oloop.errors import InvalidInput, NotFound
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, TransactionKind
from o2oloop.merchants.models import Merchant
from o2oloop.money import Money
from o2oloop.offers.models import Offer, OfferKind
from o2oloop.prepared import dialect_insert
from o2oloop.visits.models import Visit

EPOCH = date(2026, 1, 5)  # a Monday: periods of 7 days run Monday to Sunday


def on_claim(session: Session, *, share: Share, code: Code) -> bool:
    """A friend claimed through `share`: record a pending referral, or refuse (False)."""
    friend_id = code.consumer_id
    assert friend_id is not None
    if friend_id == share.consumer_id:
        return False
    sharer = session.get(Consumer, share.consumer_id)
    friend = session.get(Consumer, friend_id)
    if sharer is None or friend is None or sharer.erased_at is not None:
        return False
    if sharer.phone_hash is not None and sharer.phone_hash == friend.phone_hash:
        return False
    looped = session.scalar(
        select(Referral.id).where(
            Referral.merchant_id == share.merchant_id,
            Referral.sharer_id == friend_id,
            Referral.friend_id == share.consumer_id,
        )
    )
    if looped is not None:
        return False
    already = session.scalar(
        select(Referral.id).where(
            Referral.merchant_id == share.merchant_id,
            Referral.sharer_id == share.consumer_id,
            Referral.friend_id == friend_id,
        )
    )
    if already is None:  # a friend is brought once per sharer and merchant
        session.add(
            Referral(
                id=new_id("ref"),
                merchant_id=share.merchant_id,
                share_id=share.id,
                sharer_id=share.consumer_id,
                friend_id=friend_id,
                code_id=code.id,
                state=ReferralState.PENDING,
                reason="",
                created_at=code.claimed_at,
            )
        )
    return True


def set_program(
    session: Session, *, principal: Principal, merchant_id: str, data: ReferralProgramIn
) -> ReferralProgram:
    require_merchant_admin(principal, merchant_id)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("no merchant with this id")
    if data.reward_kind is RewardKind.COUPON:
        if data.reward_offer_id is None:
            raise InvalidInput("reward_offer_id: a coupon reward names one of your coupons")
        offer = get_owned(
            session, Offer, data.reward_offer_id, merchant_id=merchant_id, what="offer"
        )
        if offer.kind is not OfferKind.COUPON:
            raise InvalidInput("reward_offer_id: the reward must be a coupon")
    elif not data.reward_amount:
        raise InvalidInput("reward_amount: a stored-value reward needs an amount above 0")
    program = session.get(ReferralProgram, merchant_id) or ReferralProgram(merchant_id=merchant_id)
    program.reward_kind = data.reward_kind
    program.reward_offer_id = (
        data.reward_offer_id if data.reward_kind is RewardKind.COUPON else None
    )
    program.reward_amount = (
        data.reward_amount if data.reward_kind is RewardKind.STORED_VALUE else None
    )
    program.cap_per_period = data.cap_per_period
    program.period_days = data.period_days
    program.active = data.active
    program.updated_at = clock.now()
    session.add(program)
    session.flush()
    return program


def period_start(day: date, period_days: int) -> date:
    return EPOCH + timedelta(days=(day - EPOCH).days // period_days * period_days)


def _settle(session: Session, referral: Referral, state: ReferralState, reason: str) -> bool:
    """Move a pending referral to its outcome; False if another worker already did."""
    moved = session.execute(
        update(Referral)
        .where(Referral.id == referral.id, Referral.state == ReferralState.PENDING)
        .values(state=state, reason=reason, settled_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def _below_cap(session: Session, program: ReferralProgram, sharer_id: str) -> bool:
    start = period_start(clock.now().date(), program.period_days)
    insert = dialect_insert(session.get_bind().dialect.name)
    session.execute(
        insert(SharerPeriod)
        .values(
            merchant_id=program.merchant_id, sharer_id=sharer_id, period_start=start, rewarded=0
        )
        .on_conflict_do_nothing()
    )
    bumped = session.execute(
        update(SharerPeriod)
        .where(
            SharerPeriod.merchant_id == program.merchant_id,
            SharerPeriod.sharer_id == sharer_id,
            SharerPeriod.period_start == start,
            SharerPeriod.rewarded < program.cap_per_period,
        )
        .values(rewarded=SharerPeriod.rewarded + 1)
        .execution_options(synchronize_session=False)
    )
    return bumped.rowcount == 1


def settle_redemption(
    session: Session, *, redemption_id: str, keys: codes.Keys
) -> ReferralReward | None:
    """After a redemption committed: pay the sharer of the redeemed code, at most once."""
    redemption = session.get(Redemption, redemption_id)
    if (
        redemption is None
        or redemption.state is not RedemptionState.REDEEMED
        or redemption.code_id is None
    ):
        return None
    referral = session.scalar(
        select(Referral).where(Referral.code_id == redemption.code_id).with_for_update()
    )
    if referral is None or referral.state is not ReferralState.PENDING:
        return None
    refusal = _refusal(session, referral, redemption)
    if refusal is not None:
        _settle(session, referral, ReferralState.REFUSED, refusal)
        return None
    program = session.get(ReferralProgram, referral.merchant_id)
    if program is None or not program.active:
        _settle(session, referral, ReferralState.REFUSED, "the merchant offers no referral reward")
        return None
    if not _settle(session, referral, ReferralState.REWARDED, ""):
        return None
    if not _below_cap(session, program, referral.sharer_id):
        session.execute(
            update(Referral)
            .where(Referral.id == referral.id)
            .values(state=ReferralState.CAPPED, reason="the sharer reached this period's cap")
            .execution_options(synchronize_session=False)
        )
        return None
    return _pay(session, program, referral, redemption, keys)


def _refusal(session: Session, referral: Referral, redemption: Redemption) -> str | None:
    sharer = session.get(Consumer, referral.sharer_id)
    if sharer is None or sharer.erased_at is not None:
        return "the sharer's account was erased"
    if redemption.consumer_id == referral.sharer_id:
        return "redeemed by the sharer"
    member_consumer = session.scalar(
        select(Membership.consumer_id)
        .join(Visit, Visit.member_id == Membership.id)
        .where(Visit.redemption_id == redemption.id)
    )
    if member_consumer == referral.sharer_id:
        return "paid with the sharer's own membership (phone)"
    return None


def _pay(
    session: Session,
    program: ReferralProgram,
    referral: Referral,
    redemption: Redemption,
    keys: codes.Keys,
) -> ReferralReward:
    reward = ReferralReward(
        id=new_id("rwd"),
        merchant_id=referral.merchant_id,
        referral_id=referral.id,
        redemption_id=redemption.id,
        sharer_id=referral.sharer_id,
        kind=program.reward_kind,
        amount=0,
        created_at=clock.now(),
    )
    if program.reward_kind is RewardKind.COUPON:
        offer = session.get(Offer, program.reward_offer_id)
        assert offer is not None
        code = codes.new_code(
            session, offer=offer, consumer_id=referral.sharer_id, keys=keys, price_paid=0
        )
        session.execute(
            update(Offer)
            .where(Offer.id == offer.id)
            .values(issued_count=Offer.issued_count + 1)
            .execution_options(synchronize_session=False)
        )
        reward.code_id = code.id
        reward.amount = offer.amount_off or 0
    else:
        merchant = session.get(Merchant, referral.merchant_id)
        assert merchant is not None and program.reward_amount
        amount = Money(program.reward_amount, merchant.currency)
        payable = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, merchant.id, merchant.currency
        )
        escrow = ledger.stored_value_account(
            session,
            consumer_id=referral.sharer_id,
            merchant_id=merchant.id,
            currency=merchant.currency,
        )
        posted = ledger.post(
            session,
            kind=TransactionKind.REFERRAL_REWARD,
            entries=[(payable, -amount), (escrow, amount)],
            reference=f"referral:{redemption.id}",
            memo=f"referral reward for redemption {redemption.id}",
        )
        reward.ledger_transaction_id = posted.id
        reward.amount = amount.amount
    session.add(reward)
    session.flush()
    return reward


def settle_pending(session: Session, *, keys: codes.Keys, limit: int = 500) -> int:
    """Settle pending referrals whose codes were redeemed: the sweep beside the event handler
    (and, until events reach this domain, the way rewards are paid). Returns rewards paid."""
    rows = session.execute(
        select(Redemption.id)
        .join(Referral, Referral.code_id == Redemption.code_id)
        .where(
            Referral.state == ReferralState.PENDING, Redemption.state == RedemptionState.REDEEMED
        )
        .order_by(Redemption.id)
        .limit(limit)
    ).scalars()
    return sum(1 for rid in list(rows) if settle_redemption(session, redemption_id=rid, keys=keys))


def top_sharers(
    session: Session, *, principal: Principal, merchant_id: str, limit: int = 20
) -> list[dict]:
    """Who brought the most friends with a verified visit, and what those visits brought."""
    require_merchant_staff(principal, merchant_id)
    redeemed = Redemption.state == RedemptionState.REDEEMED
    statement = (
        select(
            Referral.sharer_id,
            func.count(Referral.id),
            func.count(Redemption.id),
            func.coalesce(func.sum(func.coalesce(Visit.amount, Redemption.bill_amount, 0)), 0),
            func.count(ReferralReward.id),
            func.coalesce(func.sum(ReferralReward.amount), 0),
        )
        .outerjoin(Redemption, (Redemption.code_id == Referral.code_id) & redeemed)
        .outerjoin(Visit, Visit.redemption_id == Redemption.id)
        .outerjoin(ReferralReward, ReferralReward.referral_id == Referral.id)
        .where(Referral.merchant_id == merchant_id)
        .group_by(Referral.sharer_id)
        .order_by(func.count(Redemption.id).desc(), Referral.sharer_id)
        .limit(limit)
    )
    names = {}
    rows = list(session.execute(statement))
    if rows:
        names = dict(
            session.execute(
                select(Consumer.id, Consumer.display_name).where(
                    Consumer.id.in_([r[0] for r in rows])
                )
            ).all()
        )
    return [
        {
            "sharer_id": sharer_id,
            "display_name": names.get(sharer_id, ""),
            "friends_claimed": claimed,
            "friends_redeemed": redeemed_n,
            "revenue": int(revenue),
            "rewards": rewards,
            "rewards_value": int(reward_value),
        }
        for sharer_id, claimed, redeemed_n, revenue, rewards, reward_value in rows
    ]


def on_code_redeemed(session: Session, event: CodeRedeemed, *, keys: codes.Keys) -> None:
    """The worker's reaction to a redemption (after it committed): pay its sharer, if any."""
    if event.code_id is not None:
        settle_redemption(session, redemption_id=event.redemption_id, keys=keys)


def sweep(db: Database, *, keys: codes.Keys) -> dict[str, int]:
    """The periodic safety net: referrals whose redemption's event was missed."""
    with db.transaction() as session:
        return {"rewards": settle_pending(session, keys=keys)}
