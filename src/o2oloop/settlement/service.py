"""Settlement: per merchant, a batch of everything payable up to a cutoff, paid out.

A batch takes every merchant-payable entry up to the cutoff that no earlier batch took (an
entry belongs to at most one batch: `settlement_lines.entry_id` is a primary key), adds what
the previous batch carried forward, and pays the total out through the provider. A negative
total (say a redemption undone after its payout) is not paid: it is carried into the next
batch. Hence, for every merchant at every moment:

    merchant payable balance = last batch's carried_out + sum of unsettled payable entries

which reconciliation checks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from o2oloop import clock
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant,
    require_merchant_staff,
    require_platform,
)
from o2oloop.db import new_id
from o2oloop.errors import InvalidInput, NotFound
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from o2oloop.merchants.models import Merchant
from o2oloop.money import MINOR_UNITS, Money
from o2oloop.pagination import paginate
from o2oloop.payments import service as payments
from o2oloop.payments.events import PayoutFinished
from o2oloop.settlement.models import SettlementBatch, SettlementLine, SettlementStatus


def _payable_account(session: Session, merchant: Merchant, *, lock: bool) -> LedgerAccount:
    account = ledger.merchant_account(
        session, AccountKind.MERCHANT_PAYABLE, merchant.id, merchant.currency
    )
    if lock:  # serialises settlements (and postings) of this merchant's payable
        session.execute(
            select(LedgerAccount.id).where(LedgerAccount.id == account.id).with_for_update()
        )
    return account


def last_batch(session: Session, merchant_id: str) -> SettlementBatch | None:
    return session.scalar(
        select(SettlementBatch)
        .where(SettlementBatch.merchant_id == merchant_id)
        .order_by(SettlementBatch.sequence.desc())
        .limit(1)
    )


def settle_merchant(
    session: Session,
    *,
    merchant_id: str,
    cutoff: datetime,
    behaviour: str | None = None,
) -> SettlementBatch | None:
    """Batch and pay out one merchant's payable up to `cutoff`; None when nothing is due."""
    if cutoff.tzinfo is None:
        raise InvalidInput("the cutoff must carry a timezone")
    if cutoff > clock.now():
        raise InvalidInput("the cutoff may not be in the future")
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    payable = _payable_account(session, merchant, lock=True)
    batch = _open_batch(session, merchant, cutoff)
    net, count = _claim_lines(session, batch, payable, cutoff)
    if count == 0 and batch.carried_in == 0:
        session.delete(batch)
        session.flush()
        return None
    total = batch.carried_in + net
    batch.net, batch.line_count = net, count
    if total > 0:
        _pay_out(session, batch, merchant, payable, total, behaviour)
    else:
        batch.payout_amount, batch.carried_out = 0, total
        batch.status = SettlementStatus.CARRIED_FORWARD
    session.flush()
    return batch


def _open_batch(session: Session, merchant: Merchant, cutoff: datetime) -> SettlementBatch:
    """The merchant's next batch, carrying in what the last one carried out."""
    previous = last_batch(session, merchant.id)
    carried_in = previous.carried_out if previous else 0
    now = clock.now()
    batch = SettlementBatch(
        id=new_id("stl"),
        merchant_id=merchant.id,
        sequence=(previous.sequence + 1) if previous else 1,
        currency=merchant.currency,
        cutoff=cutoff,
        status=SettlementStatus.CARRIED_FORWARD,
        carried_in=carried_in,
        net=0,
        payout_amount=0,
        carried_out=carried_in,
        line_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(batch)
    session.flush()
    return batch


def _claim_lines(
    session: Session, batch: SettlementBatch, payable: LedgerAccount, cutoff: datetime
) -> tuple[int, int]:
    """Every payable entry up to the cutoff that no batch holds yet joins this one.

    Done in the database (`INSERT … SELECT`), so a batch of a million lines never passes
    through Python; returns the lines' net amount and count.
    """
    already = select(SettlementLine.entry_id).where(SettlementLine.entry_id == LedgerEntry.id)
    session.execute(
        insert(SettlementLine).from_select(
            ["entry_id", "batch_id"],
            select(LedgerEntry.id, literal(batch.id)).where(
                LedgerEntry.account_id == payable.id,
                LedgerEntry.created_at <= cutoff,
                ~already.exists(),
            ),
        )
    )
    net, count = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0), func.count(LedgerEntry.id))
        .join(SettlementLine, SettlementLine.entry_id == LedgerEntry.id)
        .where(SettlementLine.batch_id == batch.id)
    ).one()
    return int(net), int(count)


def _pay_out(
    session: Session,
    batch: SettlementBatch,
    merchant: Merchant,
    payable: LedgerAccount,
    total: int,
    behaviour: str | None,
) -> None:
    """Request the batch's payout; the payout's own entry on payable is a line of this batch."""
    operation = payments.request_payout(
        session,
        amount=Money(total, merchant.currency),
        source=payable,
        transit=ledger.merchant_account(
            session, AccountKind.PAYOUTS_IN_TRANSIT, merchant.id, merchant.currency
        ),
        ledger_kind=TransactionKind.PAYOUT_REQUESTED,
        destination=merchant.id,
        reference=batch.id,
        merchant_id=merchant.id,
        behaviour=behaviour,
    )
    session.execute(
        insert(SettlementLine).from_select(
            ["entry_id", "batch_id"],
            select(LedgerEntry.id, literal(batch.id))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(
                LedgerEntry.account_id == payable.id,
                LedgerTransaction.kind == TransactionKind.PAYOUT_REQUESTED,
                LedgerTransaction.reference == batch.id,
            ),
        )
    )
    batch.line_count += 1
    batch.payout_amount, batch.carried_out = total, 0
    batch.payout_operation_id = operation.id
    batch.status = SettlementStatus.PAYOUT_PENDING


def merchants_to_settle(session: Session) -> list[str]:
    """Merchants with a payable account (the only ones a batch could be due for)."""
    return list(
        session.scalars(
            select(LedgerAccount.merchant_id)
            .where(LedgerAccount.kind == AccountKind.MERCHANT_PAYABLE)
            .order_by(LedgerAccount.merchant_id)
        )
    )


def payout_finished(session: Session, event: PayoutFinished) -> None:
    """The provider paid a settlement's payout or refused it (a handler of the event); the
    money itself was moved by payments in the webhook's transaction."""
    if not event.to_merchant:
        return
    batch = session.scalar(
        select(SettlementBatch).where(SettlementBatch.payout_operation_id == event.operation_id)
    )
    if batch is None:
        return
    batch.status = SettlementStatus.PAID if event.succeeded else SettlementStatus.PAYOUT_FAILED
    batch.updated_at = clock.now()
    session.flush()


def merchant_summary(session: Session, *, principal: Principal, merchant_id: str) -> dict[str, Any]:
    """A merchant's own balances by kind, in its currency: what settlement will pay and what
    still waits in escrow or in transit."""
    require_merchant_staff(principal, merchant_id)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    totals = ledger.balances_by_kind(session, merchant_id=merchant_id, currency=merchant.currency)
    return {
        "merchant_id": merchant_id,
        "currency": merchant.currency,
        "payable": totals.get(AccountKind.MERCHANT_PAYABLE, 0),
        "voucher_escrow": totals.get(AccountKind.VOUCHER_ESCROW, 0),
        "stored_value_escrow": totals.get(AccountKind.STORED_VALUE_ESCROW, 0),
        "payouts_in_transit": totals.get(AccountKind.PAYOUTS_IN_TRANSIT, 0),
        "refunds_in_transit": totals.get(AccountKind.REFUNDS_IN_TRANSIT, 0),
        "commission": totals.get(AccountKind.PLATFORM_COMMISSION, 0),
    }


# ---- reading -----------------------------------------------------------------------------


def get_batch(
    session: Session, *, principal: Principal, merchant_id: str, settlement_id: str
) -> SettlementBatch:
    require_merchant_staff(principal, merchant_id)
    batch = get_owned(
        session, SettlementBatch, settlement_id, merchant_id=merchant_id, what="settlement"
    )
    return batch


def list_batches(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[SettlementBatch], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(SettlementBatch).where(SettlementBatch.merchant_id == merchant_id)
    return paginate(session, query, SettlementBatch.id, cursor=cursor, limit=limit)


def run_for_merchant(
    session: Session, *, principal: Principal, merchant_id: str, cutoff: datetime
) -> SettlementBatch | None:
    require_merchant(principal, merchant_id)
    require_platform(principal)
    return settle_merchant(session, merchant_id=merchant_id, cutoff=cutoff)


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    transaction_id: str
    kind: str
    reference: str
    occurred_at: datetime
    gross: int
    commission: int
    net: int
    currency: str
    memo: str


def statement_lines(session: Session, batch: SettlementBatch) -> Iterator[StatementLine]:
    """Each payable movement of the batch with the commission taken in the same posting."""
    commission_entry = aliased(LedgerEntry)
    commission_account = aliased(LedgerAccount)
    commission = (
        select(
            commission_entry.transaction_id.label("transaction_id"),
            func.sum(commission_entry.amount).label("amount"),
        )
        .join(commission_account, commission_account.id == commission_entry.account_id)
        .where(
            commission_account.kind == AccountKind.PLATFORM_COMMISSION,
            commission_account.merchant_id == batch.merchant_id,
            commission_entry.transaction_id.in_(
                select(LedgerEntry.transaction_id)
                .join(SettlementLine, SettlementLine.entry_id == LedgerEntry.id)
                .where(SettlementLine.batch_id == batch.id)
            ),
        )
        .group_by(commission_entry.transaction_id)
        .subquery()
    )
    rows = session.execute(
        select(
            LedgerEntry.id,
            LedgerEntry.amount,
            LedgerEntry.currency,
            LedgerTransaction.id,
            LedgerTransaction.kind,
            LedgerTransaction.reference,
            LedgerTransaction.created_at,
            LedgerTransaction.memo,
            commission.c.amount,
        )
        .join(SettlementLine, SettlementLine.entry_id == LedgerEntry.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .outerjoin(commission, and_(commission.c.transaction_id == LedgerTransaction.id))
        .where(SettlementLine.batch_id == batch.id)
        .order_by(LedgerEntry.id)
        .execution_options(yield_per=5000)
    )
    for entry_id, net, currency, tx_id, kind, reference, at, memo, fee in rows:
        fee = int(fee or 0)
        yield StatementLine(
            entry_id=entry_id,
            transaction_id=tx_id,
            kind=kind.value if hasattr(kind, "value") else str(kind),
            reference=reference,
            occurred_at=clock.as_utc(at),
            gross=int(net) + fee,
            commission=fee,
            net=int(net),
            currency=currency,
            memo=memo,
        )


def _decimal(amount: int, currency: str) -> str:
    exp = MINOR_UNITS[currency]
    if not exp:
        return str(amount)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exp)
    return f"{sign}{units}.{minor:0{exp}d}"


CSV_COLUMNS = (
    "occurred_at",
    "kind",
    "reference",
    "transaction_id",
    "gross",
    "commission",
    "net",
    "currency",
    "memo",
)


def statement_csv(session: Session, batch: SettlementBatch) -> str:
    """The statement as CSV: one row per line, amounts as decimals in the batch currency."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for line in statement_lines(session, batch):
        writer.writerow(
            [
                line.occurred_at.isoformat(),
                line.kind,
                line.reference,
                line.transaction_id,
                _decimal(line.gross, line.currency),
                _decimal(line.commission, line.currency),
                _decimal(line.net, line.currency),
                line.currency,
                line.memo,
            ]
        )
    writer.writerow([])
    for label, value in (
        ("carried_in", batch.carried_in),
        ("net", batch.net),
        ("payout", batch.payout_amount),
        ("carried_out", batch.carried_out),
    ):
        writer.writerow(
            [label, "", "", "", "", "", _decimal(value, batch.currency), batch.currency]
        )
    return out.getvalue()
