"""The payment-provider interface and the built-in sandbox provider.

The sandbox behaves like a real provider: a charge, refund or payout starts `pending` and is
completed *later* by a webhook event, signed the way providers sign them:

    O2O-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

Receivers reject signatures older than five minutes and event ids they have already seen.
What the sandbox does with an object is chosen by `metadata["behaviour"]` (or the provider's
defaults): "succeed", "fail" (processing error), "decline" (card declined) or "timeout" (no
answer; after CHARGE_TIMEOUT the provider gives up and reports the charge failed/expired).
The sandbox keeps its own books (`sandbox_provider_records`), so reconciliation can compare
the platform's provider clearing account with what the provider says happened. Like a real
provider it takes no part in the platform's transactions and dedupes by idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import Database, new_id
from o2oloop.errors import ProblemError
from o2oloop.money import Money
from o2oloop.payments.models import SandboxEvent, SandboxRecord
from o2oloop.prepared import dialect_insert

log = logging.getLogger("o2oloop.payments.sandbox")

SIGNATURE_HEADER = "O2O-Signature"
TOLERANCE = timedelta(minutes=5)
CHARGE_TIMEOUT = timedelta(minutes=30)
Behaviour = Literal["succeed", "fail", "decline", "timeout"]
BEHAVIOURS: tuple[str, ...] = ("succeed", "fail", "decline", "timeout")
_FAILURE_CODES = {"fail": "processing_error", "decline": "card_declined", "timeout": "expired"}
_SUCCESS_EVENT = {
    "charge": "charge.succeeded",
    "refund": "refund.succeeded",
    "payout": "payout.paid",
}
_FAILURE_EVENT = {"charge": "charge.failed", "refund": "refund.failed", "payout": "payout.failed"}
_RETRY_BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=10))


@dataclass(frozen=True, slots=True)
class ProviderObject:
    """What the provider answers when asked to move money: an id and a (pending) status."""

    id: str
    status: str
    amount: Money


ProviderCharge = ProviderObject
ProviderRefund = ProviderObject
ProviderPayout = ProviderObject


class PaymentProvider(Protocol):
    """What the platform needs from a payment provider.

    It is called after the platform's transaction committed (never with a session: a real
    provider is a network call), with the intent's or operation's id as `idempotency_key`:
    asked twice with one key, a provider answers with the object it made the first time.
    """

    name: str

    def create_charge(
        self, *, amount: Money, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderCharge: ...

    def create_refund(
        self, *, charge_id: str, amount: Money, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderRefund: ...

    def create_payout(
        self, *, amount: Money, destination: str, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderPayout: ...


class IdempotencyKeyReused(ValueError):
    """One key, two different requests: the provider refuses the second."""


class InvalidSignature(ProblemError):
    """The signature is the sender's credential: without a valid one the sender is unknown."""

    status, slug, title = 401, "invalid-webhook-signature", "Webhook signature rejected"


# ---- signing -----------------------------------------------------------------------------


def webhook_secret(secret_key: str, provider: str = "sandbox") -> str:
    """The provider's signing secret, derived from the platform secret (sandbox only)."""
    return hmac.new(secret_key.encode(), f"webhook:{provider}".encode(), hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(payload: bytes, header: str | None, secret: str) -> None:
    """Raise InvalidSignature unless `header` signs `payload` with `secret` within tolerance."""
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature(f"{SIGNATURE_HEADER} must look like 't=<unix seconds>,v1=<hex>'")
    age = clock.now().timestamp() - timestamp
    if abs(age) > TOLERANCE.total_seconds():
        raise InvalidSignature(
            f"signature timestamp is {int(abs(age))} s away from now; "
            f"the tolerance is {int(TOLERANCE.total_seconds())} s"
        )
    expected = sign(payload, secret, timestamp).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidSignature("signature does not match the body (wrong secret or altered body)")


# ---- the sandbox -------------------------------------------------------------------------


Books = Database | Callable[[], Database]


class SandboxProvider:
    """A provider keeping its books in the platform's database, completing by webhook.

    It opens its own transactions on `books` (a `Database`, or a callable that gives one
    when first needed), as a real provider keeps its own storage: it never joins the
    platform's transaction.
    """

    name = "sandbox"

    def __init__(
        self,
        books: Books | None = None,
        *,
        charge_behaviour: Behaviour = "succeed",
        refund_behaviour: Behaviour = "succeed",
        payout_behaviour: Behaviour = "succeed",
    ) -> None:
        self._books = books
        self.defaults = {
            "charge": charge_behaviour,
            "refund": refund_behaviour,
            "payout": payout_behaviour,
        }

    def books(self) -> Database:
        if self._books is None:
            raise RuntimeError("the sandbox provider needs its database: SandboxProvider(db)")
        if not isinstance(self._books, Database):
            self._books = self._books()
        return self._books

    def _record(
        self,
        obj: str,
        *,
        amount: Money,
        idempotency_key: str,
        metadata: dict[str, Any],
        charge_id: str | None = None,
        destination: str | None = None,
    ) -> ProviderObject:
        if amount.amount <= 0:
            raise ValueError("the provider moves positive amounts only")
        behaviour = str(metadata.get("behaviour") or self.defaults[obj])
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown sandbox behaviour {behaviour!r}")
        db = self.books()
        with db.transaction() as session:
            if charge_id is not None:
                charge = session.get(SandboxRecord, charge_id)
                if charge is None or charge.object != "charge" or charge.status != "succeeded":
                    raise ValueError("the sandbox refunds succeeded charges only")
            now = clock.now()
            values = {
                "id": new_id({"charge": "ch", "refund": "re", "payout": "po"}[obj]),
                "object": obj,
                "amount": amount.amount,
                "currency": amount.currency,
                "reference": idempotency_key,
                "charge_id": charge_id,
                "destination": destination,
                "behaviour": behaviour,
                "status": "pending",
                "details": {k: v for k, v in metadata.items() if isinstance(v, str | int | bool)},
                "due_at": now + CHARGE_TIMEOUT if behaviour == "timeout" else now,
                "created_at": now,
            }
            insert = dialect_insert(db.dialect)(SandboxRecord.__table__).values(values)
            session.execute(insert.on_conflict_do_nothing(index_elements=["object", "reference"]))
            record = session.scalars(
                select(SandboxRecord).where(
                    SandboxRecord.object == obj, SandboxRecord.reference == idempotency_key
                )
            ).one()
            if (record.amount, record.currency, record.charge_id, record.destination) != (
                amount.amount,
                amount.currency,
                charge_id,
                destination,
            ):
                raise IdempotencyKeyReused(
                    f"the key {idempotency_key!r} was used for another {obj} request"
                )
            return ProviderObject(id=record.id, status=record.status, amount=amount)

    def create_charge(
        self, *, amount: Money, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderCharge:
        return self._record(
            "charge", amount=amount, idempotency_key=idempotency_key, metadata=metadata
        )

    def create_refund(
        self, *, charge_id: str, amount: Money, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderRefund:
        return self._record(
            "refund", amount=amount, idempotency_key=idempotency_key, metadata=metadata,
            charge_id=charge_id,
        )  # fmt: skip

    def create_payout(
        self, *, amount: Money, destination: str, idempotency_key: str, metadata: dict[str, Any]
    ) -> ProviderPayout:
        return self._record(
            "payout", amount=amount, idempotency_key=idempotency_key, metadata=metadata,
            destination=destination,
        )  # fmt: skip


def _complete_due(session: Session) -> int:
    """The provider's own work: settle every due record and queue its webhook event."""
    now = clock.now()
    due = session.scalars(
        select(SandboxRecord)
        .where(SandboxRecord.status == "pending", SandboxRecord.due_at <= now)
        .order_by(SandboxRecord.created_at, SandboxRecord.id)
        .with_for_update(skip_locked=True)
    ).all()
    for record in due:
        succeeded = record.behaviour == "succeed"
        record.status = "succeeded" if succeeded else "failed"
        record.failure_code = None if succeeded else _FAILURE_CODES[record.behaviour]
        record.completed_at = now
        event_id = new_id("evt")
        event_type = (_SUCCESS_EVENT if succeeded else _FAILURE_EVENT)[record.object]
        payload = {
            "id": event_id,
            "type": event_type,
            "created": int(now.timestamp()),
            "data": {
                "object": {
                    "id": record.id,
                    "object": record.object,
                    "amount": record.amount,
                    "currency": record.currency,
                    "status": record.status,
                    "reference": record.reference,
                    "charge": record.charge_id,
                    "destination": record.destination,
                    "failure_code": record.failure_code,
                    "metadata": record.details,
                }
            },
        }
        session.add(
            SandboxEvent(
                id=event_id,
                record_id=record.id,
                type=event_type,
                payload=json.dumps(payload, separators=(",", ":"), sort_keys=True),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    session.flush()
    return len(due)


Sender = Callable[[bytes, dict[str, str]], int]


@dataclass
class DeliveryReport:
    completed: int = 0
    delivered: int = 0
    failed: int = 0


def deliver_pending_events(
    db: Database, *, send: Sender, secret: str, limit: int = 1000
) -> DeliveryReport:
    """Run the sandbox provider's clock: complete due objects and deliver their webhooks.

    Deliveries happen outside any database transaction (the receiver writes to the same
    database); each one is signed at the moment of sending. A non-2xx answer is retried with
    backoff on a later call, as real providers do.
    """
    report = DeliveryReport()
    with db.transaction() as session:
        report.completed = _complete_due(session)
    with db.transaction() as session:
        now = clock.now()
        queued = session.execute(
            select(SandboxEvent.id, SandboxEvent.payload)
            .where(SandboxEvent.delivered_at.is_(None), SandboxEvent.next_attempt_at <= now)
            .order_by(SandboxEvent.created_at, SandboxEvent.id)
            .limit(limit)
        ).all()
    for event_id, payload in queued:
        body = payload.encode()
        headers = {
            SIGNATURE_HEADER: sign(body, secret, int(clock.now().timestamp())),
            "Content-Type": "application/json",
        }
        try:
            status = send(body, headers)
        except Exception:  # a receiver that is down is retried later
            log.warning("webhook delivery of %s failed", event_id, exc_info=True)
            status = 0
        with db.transaction() as session:
            event = session.get(SandboxEvent, event_id)
            assert event is not None
            event.attempts += 1
            event.last_status = status
            if 200 <= status < 300:
                event.delivered_at = clock.now()
                report.delivered += 1
            else:
                backoff = _RETRY_BACKOFF[min(event.attempts, len(_RETRY_BACKOFF)) - 1]
                event.next_attempt_at = clock.now() + backoff
                report.failed += 1
    return report


def http_sender(url: str, *, timeout: float = 10.0) -> Sender:
    """Deliver by HTTP POST, as a real provider would."""

    def send(body: bytes, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code

    return send
