"""Taking a redemption back within the grace period, and the merchant's log of attempts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import Principal, require_merchant_staff
from o2oloop.codes.counter import counter_of
from o2oloop.codes.events import RedemptionUndone
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeState,
    Redemption,
    RedemptionAttempt,
    RedemptionState,
)
from o2oloop.errors import Conflict, NotFound
from o2oloop.ledger import service as ledger
from o2oloop.offers.models import OfferStoreRedemptions, store_count_shard


def undo(
    session: Session, *, principal: Principal, redemption_id: str, grace: timedelta
) -> Redemption:
    """Take back a redemption within the grace period, at the same store: the code works
    again, a voucher's money goes back to escrow, the store's count drops by one."""
    counter = counter_of(session, principal)
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or redemption.store_id != counter.store_id:
        raise NotFound("no redemption with this id at this store")
    if redemption.state is RedemptionState.UNDONE:
        raise Conflict("this redemption has already been undone")
    if clock.now() - redemption.redeemed_at > grace:
        minutes = int(grace.total_seconds() // 60)
        raise Conflict(f"a redemption can be undone only within {minutes} minutes")
    undone = session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.state == RedemptionState.REDEEMED)
        .values(state=RedemptionState.UNDONE, undone_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if undone.rowcount != 1:
        raise Conflict("this redemption has already been undone")
    if redemption.ledger_transaction_id is not None:
        ledger.reverse(session, redemption.ledger_transaction_id, memo=f"undo {redemption.id}")
    _give_code_back(session, redemption)
    _uncount(session, redemption)
    events.record(
        session,
        RedemptionUndone(
            merchant_id=redemption.merchant_id,
            store_id=redemption.store_id,
            offer_id=redemption.offer_id,
            redemption_id=redemption.id,
            code_id=redemption.code_id,
        ),
    )
    session.flush()
    session.refresh(redemption)
    return redemption


def _give_code_back(session: Session, redemption: Redemption) -> None:
    if redemption.code_id is not None:
        session.execute(
            update(Code)
            .where(Code.id == redemption.code_id, Code.state == CodeState.REDEEMED)
            .values(state=CodeState.ACTIVE, redeemed_at=None)
            .execution_options(synchronize_session=False)
        )
        return
    use = session.get(BatchCodeUse, (redemption.batch_id, redemption.code_index))
    if use is not None:
        session.delete(use)


def _uncount(session: Session, redemption: Redemption) -> None:
    """Take one back from the shard the redemption's till counted it in; a redemption
    counted before the shards (all in shard 0) from whichever shard still has one."""
    counts = OfferStoreRedemptions
    of_store = (counts.offer_id == redemption.offer_id, counts.store_id == redemption.store_id)
    own = store_count_shard(redemption.terminal_id)
    shard = (
        select(counts.shard)
        .where(*of_store, counts.redeemed > 0)  # never below zero
        .order_by((counts.shard == own).desc(), counts.shard)
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        update(counts)
        .where(*of_store, counts.shard == shard, counts.redeemed > 0)
        .values(redeemed=counts.redeemed - 1)
        .execution_options(synchronize_session=False)
    )


def list_attempts(
    session: Session, *, principal: Principal, merchant_id: str, cursor: int | None, limit: int
) -> list[RedemptionAttempt]:
    """The merchant's own log of every attempt, newest first, with precise reasons."""
    require_merchant_staff(principal, merchant_id)
    query = select(RedemptionAttempt).where(RedemptionAttempt.merchant_id == merchant_id)
    if cursor is not None:
        query = query.where(RedemptionAttempt.id < cursor)
    return list(session.scalars(query.order_by(RedemptionAttempt.id.desc()).limit(limit)))
