"""Stored-value cards: top-up with a merchant-funded bonus, spend at the terminal, closure.

Where the money is:
- A top-up of 500 with a bonus of 50 posts: provider clearing −500, merchant payable −50 (the
  bonus is the merchant's cost, deducted from what the platform owes it — never platform
  money), the consumer's stored-value escrow at that merchant +550.
- A spend of x posts: escrow −x, merchant payable +(x − commission), platform commission
  +commission (see ledger.service for the rounding rule). The escrow can never go negative:
  the ledger bumps it with a conditional UPDATE, so concurrent spends cannot overdraw.
- When a merchant closes, the platform refunds every remaining balance in full to its
  consumer through a provider payout (escrow → refunds in transit → provider clearing).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import (
    Principal,
    require_consumer,
    require_merchant,
    require_merchant_admin,
    require_merchant_staff,
    require_platform,
    require_terminal,
)
from o2oloop.customers.models import Consumer
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerAccount, LedgerTransaction, TransactionKind
from o2oloop.ledger.service import InsufficientFunds
from o2oloop.merchants.models import Merchant
from o2oloop.money import Money
from o2oloop.pagination import paginate
from o2oloop.payments import service as payments
from o2oloop.payments.events import PaymentSucceeded
from o2oloop.payments.models import PaymentIntent, ProviderOperation
from o2oloop.stored_value.models import StoredValueProgram

# ---- program -----------------------------------------------------------------------------


def bonus_for(tiers: list[dict[str, int]], amount: int) -> int:
    """The bonus of the largest tier whose `pay` the amount reaches (0 when none)."""
    reached = [t for t in tiers if amount >= t["pay"]]
    return max(reached, key=lambda t: t["pay"])["bonus"] if reached else 0


def set_program(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    tiers: list[dict[str, int]],
    active: bool,
) -> StoredValueProgram:
    require_merchant_admin(principal, merchant_id)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("no merchant with this id")
    tiers = list({t["pay"]: t for t in tiers}.values())  # a pay given twice keeps its last bonus
    program = session.get(StoredValueProgram, merchant_id)
    if program is None:
        program = StoredValueProgram(merchant_id=merchant_id)
        session.add(program)
    program.tiers = sorted(tiers, key=lambda t: t["pay"])
    program.active = active
    program.updated_at = clock.now()
    session.flush()
    return program


def get_program(session: Session, *, principal: Principal, merchant_id: str) -> StoredValueProgram:
    require_merchant(principal, merchant_id)
    program = session.get(StoredValueProgram, merchant_id)
    if program is None:
        raise NotFound("this merchant has no stored-value program")
    return program


# ---- top-up ------------------------------------------------------------------------------


def start_top_up(
    session: Session,
    *,
    consumer_id: str,
    merchant_id: str,
    amount: int,
    bonus: int | None = None,
    behaviour: str | None = None,
) -> PaymentIntent:
    """A payment intent for a top-up; the balance grows when the provider confirms it.

    `bonus` defaults to the merchant's program (other domains, e.g. a stored-value offer,
    may pass their own).
    """
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.active:
        raise NotFound("no merchant with this id")
    program = session.get(StoredValueProgram, merchant_id)
    if bonus is None:
        if program is None or not program.active:
            raise Conflict("this merchant does not sell stored value")
        bonus = bonus_for(program.tiers, amount)
    return payments.create_payment_intent(
        session,
        consumer_id=consumer_id,
        merchant_id=merchant_id,
        amount=Money(amount, merchant.currency),
        bonus=Money(bonus, merchant.currency),
        purpose=payments.STORED_VALUE_TOP_UP,
        reference=f"stored-value:{merchant_id}",
        behaviour=behaviour,
    )


def top_up_for_consumer(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    amount: int,
    behaviour: str | None = None,
) -> PaymentIntent:
    return start_top_up(
        session,
        consumer_id=require_consumer(principal),
        merchant_id=merchant_id,
        amount=amount,
        behaviour=behaviour,
    )


def credit_top_up(session: Session, event: PaymentSucceeded) -> LedgerTransaction | None:
    """The provider confirmed a top-up's charge: the balance grows (a handler of the event).

    The posting's reference is the charge id, so a second run finds it and posts nothing.
    """
    if event.purpose != payments.STORED_VALUE_TOP_UP:
        return None
    intent = session.get(PaymentIntent, event.payment_intent_id)
    assert intent is not None and intent.merchant_id is not None
    assert intent.provider_charge_id is not None
    credited = select(LedgerTransaction.id).where(
        LedgerTransaction.kind == TransactionKind.STORED_VALUE_TOP_UP,
        LedgerTransaction.reference == intent.provider_charge_id,
    )
    if session.scalar(credited) is not None:
        return None
    currency = intent.currency
    escrow = ledger.stored_value_account(
        session, consumer_id=intent.consumer_id, merchant_id=intent.merchant_id, currency=currency
    )
    payable = ledger.merchant_account(
        session, AccountKind.MERCHANT_PAYABLE, intent.merchant_id, currency
    )
    return ledger.post(
        session,
        kind=TransactionKind.STORED_VALUE_TOP_UP,
        entries=[
            (ledger.provider_clearing(session, currency), Money(-intent.amount, currency)),
            (payable, Money(-intent.bonus, currency)),
            (escrow, Money(intent.amount + intent.bonus, currency)),
        ],
        reference=intent.provider_charge_id,
        memo=f"top-up {intent.id}"
        + (f" with merchant-funded bonus {Money(intent.bonus, currency)}" if intent.bonus else ""),
    )


# ---- spend -------------------------------------------------------------------------------


def _existing_account(
    session: Session, *, consumer_id: str, merchant_id: str, currency: str
) -> LedgerAccount | None:
    key = ledger.account_key(AccountKind.STORED_VALUE_ESCROW, currency, merchant_id, consumer_id)
    return session.scalar(select(LedgerAccount).where(LedgerAccount.key == key))


def spend(
    session: Session,
    *,
    merchant_id: str,
    consumer_id: str,
    amount: int,
    reference: str,
) -> tuple[LedgerTransaction, Money]:
    """Spend part of a balance at the merchant; (the posting, the balance left)."""
    if amount <= 0:
        raise InvalidInput("a spend is a positive amount")
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    account = _existing_account(
        session, consumer_id=consumer_id, merchant_id=merchant_id, currency=merchant.currency
    )
    if account is None:
        raise InsufficientFunds("the stored-value balance is not enough for this spend")
    try:
        transaction = ledger.pay_merchant_from(
            session,
            kind=TransactionKind.STORED_VALUE_SPEND,
            source=account,
            merchant_id=merchant_id,
            amount=Money(amount, merchant.currency),
            commission_bps=merchant.commission_bps,
            reference=reference,
        )
    except InsufficientFunds:
        raise InsufficientFunds(
            "the stored-value balance is not enough for this spend",
            balance=ledger.cached_balance(session, account).amount,
        ) from None
    return transaction, Money(account.balance, account.currency)


def spend_at_terminal(
    session: Session, *, principal: Principal, consumer_id: str, amount: int
) -> tuple[LedgerTransaction, Money]:
    require_terminal(principal)
    return spend(
        session,
        merchant_id=principal.merchant_id,
        consumer_id=consumer_id,
        amount=amount,
        reference=f"{principal.store_id}/{principal.terminal_id}",
    )


# ---- balances ----------------------------------------------------------------------------


def consumer_balances(
    session: Session, *, principal: Principal
) -> list[tuple[LedgerAccount, Merchant]]:
    consumer_id = require_consumer(principal)
    return list(
        session.execute(
            select(LedgerAccount, Merchant)
            .join(Merchant, Merchant.id == LedgerAccount.merchant_id)
            .where(
                LedgerAccount.kind == AccountKind.STORED_VALUE_ESCROW,
                LedgerAccount.consumer_id == consumer_id,
            )
            .order_by(LedgerAccount.id)
        ).tuples()
    )


def merchant_balances(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[LedgerAccount], str | None]:
    """Stored-value balances of the merchant's own consumers only."""
    require_merchant_staff(principal, merchant_id)
    query = select(LedgerAccount).where(
        LedgerAccount.kind == AccountKind.STORED_VALUE_ESCROW,
        LedgerAccount.merchant_id == merchant_id,
    )
    return paginate(session, query, LedgerAccount.id, cursor=cursor, limit=limit)


# ---- closure -----------------------------------------------------------------------------


def refund_all(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    behaviour: str | None = None,
) -> list[ProviderOperation]:
    """The platform refunds every remaining stored-value balance of a merchant at once.

    Each balance is locked (in id order), emptied into refunds-in-transit and paid out to its
    consumer; a spend racing with this either lands first (and the refund takes the rest) or
    finds the balance empty.
    """
    require_merchant(principal, merchant_id)
    require_platform(principal)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("no merchant with this id")
    accounts = session.scalars(
        select(LedgerAccount)
        .where(
            LedgerAccount.kind == AccountKind.STORED_VALUE_ESCROW,
            LedgerAccount.merchant_id == merchant_id,
            LedgerAccount.balance > 0,
        )
        .order_by(LedgerAccount.id)
        .with_for_update()
    ).all()
    operations = []
    for account in accounts:
        session.refresh(account)
        if account.balance <= 0:
            continue
        assert account.consumer_id is not None and session.get(Consumer, account.consumer_id)
        transit = ledger.merchant_account(
            session, AccountKind.REFUNDS_IN_TRANSIT, merchant_id, account.currency
        )
        operations.append(
            payments.request_payout(
                session,
                amount=Money(account.balance, account.currency),
                source=account,
                transit=transit,
                ledger_kind=TransactionKind.STORED_VALUE_REFUND,
                destination=account.consumer_id,
                reference=f"closure:{merchant_id}",
                merchant_id=merchant_id,
                consumer_id=account.consumer_id,
                behaviour=behaviour,
            )
        )
    return operations
