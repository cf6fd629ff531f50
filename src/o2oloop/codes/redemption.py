"""Redemption at the counter: check while only reading, then store exactly once.

Exactly-once comes from the database: a conditional UPDATE of the code's state (zero rows
means someone else used it) or, for batch codes, the primary key of `batch_code_uses`.
Every refusal is raised before the first write, so a refused attempt changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import Principal
from o2oloop.codes import statements as sql
from o2oloop.codes.counter import (
    Counter,
    Located,
    Work,
    check_rate,
    counter_of,
    is_new_customer,
    locate,
    record_attempt,
    redeemed_by,
)
from o2oloop.codes.events import CodeRedeemed
from o2oloop.codes.keys import Keys
from o2oloop.codes.models import RedemptionState
from o2oloop.codes.refusals import CodeRejected, Refused, refused_for
from o2oloop.db import new_id
from o2oloop.errors import RuleViolation
from o2oloop.ledger import service as ledger
from o2oloop.merchants.models import Merchant
from o2oloop.money import Money
from o2oloop.offers.models import OfferState, store_count_shard
from o2oloop.offers.rules import (
    OfferRules,
    RedemptionContext,
    Reward,
    benefit,
    discount_at_counter,
    evaluate_redemption,
)
from o2oloop.offers.service import reward_of, rules_of
from o2oloop.prepared import DriverTransaction, driver


@dataclass(slots=True)
class NewRedemption:
    """A redemption as the counter stores it: the row's values, without the ORM's
    bookkeeping (an instrumented object costs more to build than the row costs to write)."""

    id: str
    merchant_id: str
    store_id: str
    terminal_id: str
    offer_id: str
    code_id: str | None
    batch_id: str | None
    code_index: int | None
    consumer_id: str | None
    bill_amount: int | None
    discount_amount: int
    state: RedemptionState
    ledger_transaction_id: str | None
    redeemed_at: datetime
    undone_at: datetime | None = None


@dataclass(frozen=True)
class Redeemed:
    """A redemption and what the cashier gives for it."""

    redemption: NewRedemption
    offer_title: str
    offer_kind: str
    benefit: str
    currency: str

    @property
    def amount_due(self) -> int | None:
        bill = self.redemption.bill_amount
        return None if bill is None else max(0, bill - self.redemption.discount_amount)


@dataclass(frozen=True)
class CheckedRedemption:
    """An attempt that passed every check needing no write: what `complete_redemption` stores."""

    counter: Counter
    found: Located
    rules: OfferRules
    reward: Reward
    redemption: NewRedemption  # not stored yet

    @property
    def moves_money(self) -> bool:
        """A paid voucher: completing it posts to the ledger, which needs an ORM session."""
        return self.found.code is not None and bool(self.found.code.price_paid)

    @property
    def writes_at_once(self) -> bool:
        """Whether completing it is writes only, behind the one conditional UPDATE of a
        single code (`DriverTransaction.take`): no ledger posting, and no rule on the
        customer's history, which is checked again under a lock on the customer's row."""
        return self.found.code is not None and not self.moves_money and not self.rechecks_history

    @property
    def rechecks_history(self) -> bool:
        """A rule on the customer's history (limit per customer, new customers only)."""
        rules = self.rules
        return self.found.consumer_id is not None and bool(
            rules.per_customer_limit or rules.new_customers_only
        )


def check_redemption(
    work: Work,
    *,
    principal: Principal,
    code: str,
    bill_amount: int | None,
    keys: Keys,
    rate_per_minute: int,
    at: datetime | None = None,
) -> CheckedRedemption:
    """Everything about an attempt that only reads: terminal, rate, code, offer, rules.

    Raises `Refused`. Read-only, so the counter can run it before its turn to write.
    `at` is the attempt's time (now by default), as the reads sent ahead were given it.
    """
    tx = driver(work)
    now = at or clock.now()
    counter = counter_of(tx, principal, at=now)
    check_rate(counter, per_minute=rate_per_minute)
    found = locate(tx, merchant_id=counter.merchant_id, text=code, keys=keys)
    offer = found.offer
    if offer.state is not OfferState.PUBLISHED:
        raise _offer_not_published(offer.state)
    rules, reward = rules_of(offer), reward_of(offer)
    _refuse_violations(tx, counter, found, rules, bill_amount, now)
    redemption = NewRedemption(
        id=new_id("red"),
        merchant_id=offer.merchant_id,
        store_id=counter.store_id,
        terminal_id=counter.terminal_id,
        offer_id=offer.id,
        code_id=found.code.id if found.code else None,
        batch_id=found.batch.id if found.batch else None,
        code_index=found.index,
        consumer_id=found.consumer_id,
        bill_amount=bill_amount,
        discount_amount=discount_at_counter(reward, bill_amount),
        state=RedemptionState.REDEEMED,
        ledger_transaction_id=None,
        redeemed_at=now,
    )
    return CheckedRedemption(counter, found, rules, reward, redemption)


def complete_redemption(work: Work, checked: CheckedRedemption) -> Redeemed:
    """Store a checked redemption, exactly once.

    What can change between the check and now is checked again: rules on the customer's
    history (under a lock on the customer's row, so two terminals cannot both use the
    customer's last allowed redemption), and the offer's state, by the very conditional
    write that takes the code, which only one attempt can win. Raises `Refused` before
    anything is written. A paid voucher (`checked.moves_money`) needs an ORM session.
    """
    tx = driver(work)
    counter, found, redemption = checked.counter, checked.found, checked.redemption
    offer, rules = found.offer, checked.rules
    if checked.rechecks_history:
        tx.one(sql.LOCK_CUSTOMER, consumer_id=found.consumer_id)
        _refuse_violations(
            tx, counter, found, rules, redemption.bill_amount, redemption.redeemed_at
        )
    _take_code(tx, found, redemption)
    # From here on nothing refuses: the code is ours.
    if checked.moves_money:
        redemption.ledger_transaction_id = _release_from_escrow(
            tx.session, offer=offer, price_paid=found.code.price_paid, redemption_id=redemption.id
        )
    tx.send(sql.INSERT_REDEMPTION, **_columns(redemption))
    record_attempt(
        tx, counter=counter, accepted=True, reason="redeemed", redemption_id=redemption.id
    )
    events.record(tx, _redeemed_event(redemption, offer.currency))
    # Last, so the till's shard of the store's count is held only until commit.
    tx.send(
        sql.COUNT_REDEMPTION,
        offer_id=offer.id,
        store_id=counter.store_id,
        shard=store_count_shard(counter.terminal_id),
    )
    return Redeemed(
        redemption=redemption,
        offer_title=offer.title,
        offer_kind=offer.kind.value,
        benefit=benefit(checked.reward, redemption.discount_amount),
        currency=offer.currency,
    )


def _take_code(tx: DriverTransaction, found: Located, redemption: NewRedemption) -> None:
    """The one write only one attempt can win; a single code's also needs the offer
    still published."""
    offer = found.offer
    if found.code is not None:
        tx.take(
            sql.USE_CODE,
            lambda: _code_lost(tx, offer.id),
            code_id=found.code.id,
            of_offer=offer.id,
            at=redemption.redeemed_at,
        )
        return
    assert found.batch is not None
    _refuse_unless_published(tx, offer.id)
    claimed = tx.scalar(
        sql.USE_BATCH_CODE,
        batch_id=found.batch.id,
        index=found.index,
        redemption_id=redemption.id,
    )
    if claimed is None:
        raise Refused(CodeRejected(), "batch code used by a concurrent attempt")


def redeem(
    session: Session,
    *,
    principal: Principal,
    code: str,
    bill_amount: int | None,
    keys: Keys,
    rate_per_minute: int,
) -> Redeemed:
    """Redeem a typed code or QR payload at the calling terminal's store, exactly once.

    Raises `Refused`, always before anything is written; the caller records the refusal in
    its own transaction and answers with `refused.public`.
    """
    checked = check_redemption(
        session,
        principal=principal,
        code=code,
        bill_amount=bill_amount,
        keys=keys,
        rate_per_minute=rate_per_minute,
    )
    return complete_redemption(session, checked)


def _redeemed_event(redemption: NewRedemption, currency: str) -> CodeRedeemed:
    return CodeRedeemed(
        occurred_at=redemption.redeemed_at,
        merchant_id=redemption.merchant_id,
        store_id=redemption.store_id,
        terminal_id=redemption.terminal_id,
        offer_id=redemption.offer_id,
        redemption_id=redemption.id,
        code_id=redemption.code_id,
        batch_id=redemption.batch_id,
        consumer_id=redemption.consumer_id,
        bill_amount=redemption.bill_amount,
        discount_amount=redemption.discount_amount,
        currency=currency,
    )


def _refuse_unless_published(tx: DriverTransaction, offer_id: str) -> None:
    state = tx.scalar(sql.OFFER_STATE, offer_id=offer_id)
    if state is not OfferState.PUBLISHED:
        raise _offer_not_published(state)


def _code_lost(tx: DriverTransaction, offer_id: str) -> Refused:
    """Why the code's conditional UPDATE took nothing: the offer, or a concurrent attempt."""
    try:
        _refuse_unless_published(tx, offer_id)
    except Refused as refused:
        return refused
    return Refused(CodeRejected(), "code used by a concurrent attempt")


def _offer_not_published(state: OfferState) -> Refused:
    return Refused(RuleViolation(f"this offer is {state.value}"), f"offer {state.value}")


def _refuse_violations(
    tx: DriverTransaction,
    counter: Counter,
    found: Located,
    rules: OfferRules,
    bill_amount: int | None,
    now: datetime,
) -> None:
    """Refuse with every rule this redemption would break, at this store, now."""
    offer, consumer_id = found.offer, found.consumer_id
    ctx = RedemptionContext(
        at=now,
        store_id=counter.store_id,
        store_timezone=counter.store_timezone,
        claimed_at=found.claimed_at,
        code_expires_at=found.expires_at,
        bill_amount=bill_amount,
        customer_redemptions=(
            redeemed_by(tx, offer, consumer_id) if rules.per_customer_limit else 0
        ),
        issued_count=offer.issued_count,
        customer_is_new=(
            is_new_customer(tx, offer.merchant_id, consumer_id)
            if rules.new_customers_only
            else False
        ),
        currency=offer.currency,
    )
    violations = evaluate_redemption(rules, ctx)
    if violations:
        raise refused_for(violations)


def _columns(redemption: NewRedemption) -> dict[str, Any]:
    return {column.key: getattr(redemption, column.key) for column in sql.REDEMPTIONS.columns}


def _release_from_escrow(
    session: Session, *, offer: Any, price_paid: int, redemption_id: str
) -> str:
    """A paid voucher used: its price leaves escrow for the merchant, less commission."""
    merchant = session.get(Merchant, offer.merchant_id)
    assert merchant is not None
    posting = ledger.release_voucher_to_merchant(
        session,
        merchant_id=merchant.id,
        price=Money(price_paid, offer.currency),
        commission_bps=merchant.commission_bps,
        reference=redemption_id,
    )
    return posting.id
