"""Prepaid set packages in the demo city: bought, used, refunded and left to expire.

Every merchant sells one set ("pay 88 for a set worth 128"). An app user sometimes buys one
at the end of a visit, for next time; at their next visit to that merchant they hand it
over. Some change their mind and ask for a refund within days; a voucher never used before
its expiry is refunded automatically, as the worker does. All through the real services:
the sandbox provider confirms each charge by webhook before the code exists.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop.codes import vouchers
from o2oloop.codes.models import Code, CodeState
from o2oloop.errors import ProblemError
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers
from o2oloop.sim.world import CityRun, DemoMerchant, Visit

VALID_DAYS = 45
BUY_CHANCE = 0.06  # of an app user's visits without a voucher in hand
REFUND_CHANCE = 0.08  # of bought vouchers, asked back a few days later


def setup(session: Session, run: CityRun) -> None:
    """Each merchant publishes its set package."""
    for merchant in run.merchants:
        assert merchant.admin is not None
        price = int(run.rng("prepaid").choice([6800, 8800, 12800]))
        offer = offers.create_offer(
            session,
            principal=merchant.admin,
            merchant_id=merchant.id,
            data=offer_schemas.OfferCreate(
                kind="voucher",
                title=f"Set worth {price * 1.45 / 100:.0f}",
                price=price,
                face_value=int(price * 1.45) // 100 * 100,
                includes="a set for two, drinks included",
                valid_days_after_claim=VALID_DAYS,
            ),
        )
        offers.transition(
            session,
            principal=merchant.admin,
            merchant_id=merchant.id,
            offer_id=offer.id,
            action="publish",
        )
        merchant.voucher_id = offer.id


def _held(session: Session, run: CityRun, consumer: int, merchant: DemoMerchant) -> Code | None:
    if consumer not in run.consumer_ids or merchant.voucher_id is None:
        return None
    return session.scalar(
        select(Code)
        .where(
            Code.consumer_id == run.consumer_ids[consumer],
            Code.offer_id == merchant.voucher_id,
            Code.state == CodeState.ACTIVE,
            Code.expires_at > run.frozen.now(),
        )
        .order_by(Code.claimed_at)
        .limit(1)
    )


def code_for_visit(session: Session, run: CityRun, visit: Visit) -> str | None:
    """The voucher the consumer hands over at this visit, if they hold one for it."""
    held = _held(session, run, visit.consumer, visit.merchant)
    return run.code_keys.code_text(held.id) if held is not None else None


def after_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """Sometimes an app user buys the set for next time (the charge completes tonight)."""
    rng = run.rng("prepaid")
    if not visit.app_user or visit.code is not None or rng.random() >= BUY_CHANCE:
        return
    if visit.merchant.voucher_id is None or _held(session, run, visit.consumer, visit.merchant):
        return
    try:
        with session.begin_nested():
            vouchers.buy(
                session,
                principal=run.app(session, visit.consumer),
                offer_id=visit.merchant.voucher_id,
            )
    except ProblemError:
        return
    run.report.vouchers_bought += 1


def end_of_day(session: Session, run: CityRun) -> None:
    """Refunds asked for today, and automatic refunds of vouchers that expired unused."""
    rng = run.rng("prepaid")
    now = run.frozen.now()
    fresh = session.scalars(
        select(Code).where(
            Code.state == CodeState.ACTIVE,
            Code.price_paid > 0,
            Code.redeemed_at.is_(None),
            Code.claimed_at > now - timedelta(days=1),
        )
    ).all()
    for code in fresh:
        if rng.random() < REFUND_CHANCE:
            vouchers.refund(session, code=code, reason="consumer")
            run.report.vouchers_refunded += 1
    for code_id in vouchers.expired_unused(session, now=now, limit=10_000):
        run.report.vouchers_expired += vouchers.refund_expired(session, code_id=code_id)
