"""Payment intents, provider refunds and payouts, and the webhook that completes them.

Asking the provider is not done here: a use case commits the intent or operation together
with an event (`PaymentRequested`, `RefundRequested`, `PayoutRequested`), and a job asks the
provider after the commit (`payments.requests`), keyed by the intent's or operation's id, so
a rolled-back transaction asks for nothing and a crash after the commit loses nothing.

The outcome arrives later as a signed webhook event naming that key as its `reference`.
Handling it is idempotent twice over: the event id is inserted into
`processed_webhook_events` (a replay inserts nothing and changes nothing), and every state
change is a conditional UPDATE from `pending` (a second outcome for the same object is
ignored). What other domains do about it (issue a voucher's code, credit a top-up, close a
settlement) are handlers of `PaymentSucceeded`, `PaymentFailed` and `PayoutFinished`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from o2oloop import clock, events
from o2oloop.db import Database, new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound, ProblemError
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerAccount, LedgerTransaction, TransactionKind
from o2oloop.money import Money
from o2oloop.payments import provider as providers
from o2oloop.payments.events import (
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
    PayoutFinished,
    PayoutRequested,
    RefundRequested,
)
from o2oloop.payments.models import (
    IntentStatus,
    OperationKind,
    PaymentIntent,
    ProcessedWebhookEvent,
    ProviderOperation,
)

log = logging.getLogger("o2oloop.payments")

VOUCHER = "voucher"
STORED_VALUE_TOP_UP = "stored_value_top_up"

SANDBOX = "sandbox"


# ---- payment intents ---------------------------------------------------------------------


def create_payment_intent(
    session: Session,
    *,
    consumer_id: str,
    amount: Money,
    purpose: str,
    reference: str,
    merchant_id: str | None = None,
    bonus: Money | None = None,
    details: dict[str, Any] | None = None,
    behaviour: str | None = None,
    provider: str = SANDBOX,
) -> PaymentIntent:
    """A pending intent, and the event that has the provider charge it after the commit."""
    if amount.amount <= 0:
        raise InvalidInput("a payment must be of a positive amount")
    if bonus is not None and (bonus.currency != amount.currency or bonus.amount < 0):
        raise InvalidInput("a bonus is a non-negative amount in the payment's currency")
    if purpose == VOUCHER and merchant_id is None:
        raise InvalidInput("a voucher payment names its merchant")
    if provider != SANDBOX:
        raise InvalidInput(f"unknown payment provider {provider!r}")
    now = clock.now()
    intent = PaymentIntent(
        id=new_id("pay"),
        consumer_id=consumer_id,
        merchant_id=merchant_id,
        purpose=purpose,
        amount=amount.amount,
        currency=amount.currency,
        bonus=bonus.amount if bonus else 0,
        reference=reference,
        status=IntentStatus.PENDING,
        provider=provider,
        details=details or {},
        created_at=now,
        updated_at=now,
    )
    session.add(intent)
    session.flush()
    metadata: dict[str, Any] = {"payment_intent": intent.id, "purpose": purpose}
    if behaviour:
        metadata["behaviour"] = behaviour
    events.record(
        session,
        PaymentRequested(
            payment_intent_id=intent.id,
            merchant_id=merchant_id,
            consumer_id=consumer_id,
            provider=provider,
            amount=amount.amount,
            currency=amount.currency,
            metadata=metadata,
        ),
    )
    return intent


def get_intent(
    session: Session, *, payment_intent_id: str, consumer_id: str | None
) -> PaymentIntent:
    intent = session.get(PaymentIntent, payment_intent_id)
    if intent is None or (consumer_id is not None and intent.consumer_id != consumer_id):
        raise NotFound("no payment intent with this id")
    return intent


def _finish_intent(
    session: Session,
    intent: PaymentIntent,
    status: IntentStatus,
    reason: str | None,
    charge_id: str,
) -> bool:
    """Move an intent out of pending exactly once; False when it already was."""
    table = PaymentIntent.__table__
    now = clock.now()
    changed = session.execute(
        update(table)
        .where(table.c.id == intent.id, table.c.status == IntentStatus.PENDING.value)
        .values(
            status=status.value, failure_reason=reason, provider_charge_id=charge_id, updated_at=now
        )
    ).rowcount
    if not changed:
        session.refresh(intent)
        return False
    set_committed_value(intent, "status", status)
    set_committed_value(intent, "failure_reason", reason)
    set_committed_value(intent, "provider_charge_id", charge_id)
    set_committed_value(intent, "updated_at", now)
    return True


def _intent_of(session: Session, obj: dict[str, Any]) -> PaymentIntent | None:
    """The intent a charge was made for: its idempotency key is the intent's id (or, once
    the first outcome arrived, the charge id it recorded)."""
    reference = obj.get("reference")
    intent = session.get(PaymentIntent, reference) if isinstance(reference, str) else None
    if intent is None:
        found = select(PaymentIntent).where(PaymentIntent.provider_charge_id == obj["id"])
        intent = session.scalar(found)
    if intent is None or intent.provider_charge_id not in (None, obj["id"]):
        return None
    return intent


def _charge_succeeded(session: Session, obj: dict[str, Any]) -> str:
    intent = _intent_of(session, obj)
    if intent is None:
        return "ignored: unknown charge"
    if obj["amount"] != intent.amount or obj["currency"] != intent.currency:
        log.error("charge %s amount differs from intent %s", obj["id"], intent.id)
        return "ignored: amount differs from the intent"
    if not _finish_intent(session, intent, IntentStatus.SUCCEEDED, None, obj["id"]):
        return "ignored: intent already final"
    if intent.purpose == VOUCHER:
        # The price waits in escrow from this moment; codes issues the code on the event.
        assert intent.merchant_id is not None
        transaction = ledger.escrow_voucher_payment(
            session,
            merchant_id=intent.merchant_id,
            price=Money(intent.amount, intent.currency),
            reference=obj["id"],
        )
        intent.ledger_transaction_id = transaction.id
        session.flush()
    events.record(session, PaymentSucceeded(**_intent_fields(intent)))
    return "processed"


def _charge_failed(session: Session, obj: dict[str, Any]) -> str:
    intent = _intent_of(session, obj)
    if intent is None:
        return "ignored: unknown charge"
    reason = str(obj.get("failure_code") or "failed")[:60]
    if not _finish_intent(session, intent, IntentStatus.FAILED, reason, obj["id"]):
        return "ignored: intent already final"
    events.record(session, PaymentFailed(**_intent_fields(intent), reason=reason))
    return "processed"


def _intent_fields(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "payment_intent_id": intent.id,
        "merchant_id": intent.merchant_id,
        "consumer_id": intent.consumer_id,
        "purpose": intent.purpose,
        "amount": intent.amount,
        "currency": intent.currency,
        "reference": intent.reference,
        "details": dict(intent.details or {}),
    }


# ---- refunds and payouts -----------------------------------------------------------------


def _start_operation(
    session: Session,
    *,
    kind: OperationKind,
    ledger_kind: TransactionKind,
    amount: Money,
    source: LedgerAccount,
    transit: LedgerAccount,
    reference: str,
    merchant_id: str | None,
    consumer_id: str | None = None,
    payment_intent_id: str | None = None,
) -> tuple[ProviderOperation, LedgerTransaction]:
    operation_id = new_id("pop")
    transaction = ledger.post(
        session,
        kind=ledger_kind,
        entries=[(source, -amount), (transit, amount)],
        reference=reference,
        memo=operation_id,
    )
    now = clock.now()
    operation = ProviderOperation(
        id=operation_id,
        kind=kind,
        status=IntentStatus.PENDING,
        merchant_id=merchant_id,
        consumer_id=consumer_id,
        payment_intent_id=payment_intent_id,
        amount=amount.amount,
        currency=amount.currency,
        transit_account_id=transit.id,
        source_account_id=source.id,
        reference=reference,
        created_at=now,
        updated_at=now,
    )
    session.add(operation)
    session.flush()
    return operation, transaction


def refund_intent(
    session: Session,
    *,
    payment_intent_id: str,
    amount: Money,
    source: LedgerAccount,
    kind: TransactionKind,
    reference: str,
    behaviour: str | None = None,
) -> LedgerTransaction:
    """Refund (part of) a succeeded payment from `source`; the provider is asked after commit."""
    query = select(PaymentIntent).where(PaymentIntent.id == payment_intent_id)
    intent = session.scalar(query.with_for_update())  # serialises refunds of one payment
    if intent is None or intent.status is not IntentStatus.SUCCEEDED:
        raise Conflict("only a succeeded payment can be refunded")
    if amount.currency != intent.currency or amount.amount <= 0:
        raise InvalidInput("a refund is a positive amount in the payment's currency")
    refunded = session.scalar(
        select(func.coalesce(func.sum(ProviderOperation.amount), 0)).where(
            ProviderOperation.payment_intent_id == intent.id,
            ProviderOperation.kind == OperationKind.REFUND,
            ProviderOperation.status != IntentStatus.FAILED,
        )
    )
    if int(refunded or 0) + amount.amount > intent.amount:
        raise Conflict("the refund would exceed the payment")
    assert intent.merchant_id is not None and intent.provider_charge_id is not None
    transit = ledger.merchant_account(
        session, AccountKind.REFUNDS_IN_TRANSIT, intent.merchant_id, amount.currency
    )
    operation, transaction = _start_operation(
        session,
        kind=OperationKind.REFUND,
        ledger_kind=kind,
        amount=amount,
        source=source,
        transit=transit,
        reference=reference,
        merchant_id=intent.merchant_id,
        consumer_id=intent.consumer_id,
        payment_intent_id=intent.id,
    )
    events.record(
        session,
        RefundRequested(
            operation_id=operation.id,
            payment_intent_id=intent.id,
            charge_id=intent.provider_charge_id,
            merchant_id=intent.merchant_id,
            provider=intent.provider,
            amount=amount.amount,
            currency=amount.currency,
            metadata={"behaviour": behaviour} if behaviour else {},
        ),
    )
    return transaction


def request_payout(
    session: Session,
    *,
    amount: Money,
    source: LedgerAccount,
    transit: LedgerAccount,
    ledger_kind: TransactionKind,
    destination: str,
    reference: str,
    merchant_id: str | None,
    consumer_id: str | None = None,
    behaviour: str | None = None,
) -> ProviderOperation:
    """Pay money out (to a merchant, or to a consumer on closure); asked for after commit."""
    operation, _ = _start_operation(
        session,
        kind=OperationKind.PAYOUT,
        ledger_kind=ledger_kind,
        amount=amount,
        source=source,
        transit=transit,
        reference=reference,
        merchant_id=merchant_id,
        consumer_id=consumer_id,
    )
    events.record(
        session,
        PayoutRequested(
            operation_id=operation.id,
            merchant_id=merchant_id,
            consumer_id=consumer_id,
            destination=destination,
            provider=SANDBOX,
            amount=amount.amount,
            currency=amount.currency,
            metadata={"behaviour": behaviour} if behaviour else {},
        ),
    )
    return operation


def _operation_of(session: Session, obj: dict[str, Any]) -> ProviderOperation | None:
    """The refund or payout an object was made for: its key is the operation's id (or, once
    the first outcome arrived, the object id it recorded)."""
    reference = obj.get("reference")
    operation = session.get(ProviderOperation, reference) if isinstance(reference, str) else None
    if operation is None:
        found = select(ProviderOperation).where(ProviderOperation.provider_object_id == obj["id"])
        operation = session.scalar(found)
    if operation is None or operation.provider_object_id not in (None, obj["id"]):
        return None
    return operation


def _operation_finished(session: Session, obj: dict[str, Any], succeeded: bool) -> str:
    operation = _operation_of(session, obj)
    if operation is None:
        return "ignored: unknown object"
    table = ProviderOperation.__table__
    status = IntentStatus.SUCCEEDED if succeeded else IntentStatus.FAILED
    reason = None if succeeded else str(obj.get("failure_code") or "failed")[:60]
    changed = session.execute(
        update(table)
        .where(table.c.id == operation.id, table.c.status == IntentStatus.PENDING.value)
        .values(
            status=status.value,
            failure_reason=reason,
            provider_object_id=obj["id"],
            updated_at=clock.now(),
        )
    ).rowcount
    if not changed:
        return "ignored: operation already final"
    set_committed_value(operation, "status", status)
    set_committed_value(operation, "provider_object_id", obj["id"])
    amount = Money(operation.amount, operation.currency)
    transit = session.get(LedgerAccount, operation.transit_account_id)
    assert transit is not None
    is_payout_to_merchant = transit.kind is AccountKind.PAYOUTS_IN_TRANSIT
    if succeeded:
        kind = (
            TransactionKind.PAYOUT_PAID
            if is_payout_to_merchant
            else TransactionKind.REFUND_COMPLETED
        )
        target = ledger.provider_clearing(session, operation.currency)
    else:
        kind = (
            TransactionKind.PAYOUT_FAILED
            if is_payout_to_merchant
            else TransactionKind.REFUND_FAILED
        )
        source = session.get(LedgerAccount, operation.source_account_id)
        assert source is not None
        target = source
    ledger.post(
        session,
        kind=kind,
        entries=[(transit, -amount), (target, amount)],
        # Money that left through the provider is matched to the provider's object id.
        reference=obj["id"] if succeeded else operation.reference,
        memo=operation.id,
    )
    events.record(
        session,
        PayoutFinished(
            operation_id=operation.id,
            kind=operation.kind.value,
            merchant_id=operation.merchant_id,
            consumer_id=operation.consumer_id,
            amount=operation.amount,
            currency=operation.currency,
            succeeded=succeeded,
            to_merchant=is_payout_to_merchant,
        ),
    )
    return "processed"


# ---- webhooks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    type: str
    duplicate: bool
    result: str


_DISPATCH: dict[str, Callable[[Session, dict[str, Any]], str]] = {
    "charge.succeeded": _charge_succeeded,
    "charge.failed": _charge_failed,
    "refund.succeeded": lambda s, o: _operation_finished(s, o, True),
    "refund.failed": lambda s, o: _operation_finished(s, o, False),
    "payout.paid": lambda s, o: _operation_finished(s, o, True),
    "payout.failed": lambda s, o: _operation_finished(s, o, False),
}


def parse_event(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise providers.InvalidSignature(f"the body is not JSON: {error}") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("data"), dict)
        or not isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidInput("an event has an id, a type and data.object")
    return event


def handle_event(
    session: Session, event: dict[str, Any], *, provider: str = "sandbox"
) -> WebhookOutcome:
    """Apply a verified event once; a replayed event id changes nothing."""
    event_id, event_type = event["id"][:64], event["type"][:40]
    inserted = ledger.insert_or_ignore(
        session,
        ProcessedWebhookEvent.__table__,
        {
            "event_id": event_id,
            "provider": provider,
            "type": event_type,
            "received_at": clock.now(),
        },
        key="event_id",
    )
    if not inserted:
        return WebhookOutcome(event_id, event_type, True, "duplicate: already processed")
    handler = _DISPATCH.get(event_type)
    result = handler(session, event["data"]["object"]) if handler else "ignored: unknown type"
    return WebhookOutcome(event_id, event_type, False, result)


def receive_webhook(
    session: Session, *, payload: bytes, signature: str | None, secret: str
) -> WebhookOutcome:
    """Verify, then handle. Verification happens before any read or write."""
    providers.verify(payload, signature, secret)
    return handle_event(session, parse_event(payload))


def local_sender(db: Database, secret: str) -> providers.Sender:
    """Deliver sandbox events straight to the handler (workers and tests without a server)."""

    def send(body: bytes, headers: dict[str, str]) -> int:
        try:
            with db.transaction() as session:
                receive_webhook(
                    session,
                    payload=body,
                    signature=headers.get(providers.SIGNATURE_HEADER),
                    secret=secret,
                )
        except ProblemError as error:
            return error.status
        return 200

    return send
