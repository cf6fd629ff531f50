"""The dispatcher: queued SMS and email leave here, after commit, never inside a transaction.

A round claims due messages (state queued, quiet hours over, or a dead dispatcher's lease
expired) by a conditional UPDATE, sends each outside any transaction, then records the
outcome. The provider sees our message id as its reference (SMS) or Message-ID (email): a
dispatcher killed between sending and recording resends the same id, which the sandbox
recognises. Failures retry with backoff, up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import Database
from o2oloop.notify.email import EmailSender, OutgoingEmail
from o2oloop.notify.models import Message, MessageState
from o2oloop.notify.sms import SmsError, SmsProvider
from o2oloop.payments.provider import verify

log = logging.getLogger("o2oloop.notify")
ReportPost = Callable[[bytes, dict[str, str]], int]
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)


@dataclass
class Dispatched:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _claim(db: Database, limit: int) -> list[Message]:
    now = clock.now()
    with db.transaction() as session:
        due = or_(
            (Message.state == MessageState.QUEUED) & (Message.not_before <= now),
            (Message.state == MessageState.SENDING) & (Message.lease_until < now),
        )
        query = (
            select(Message.id)
            .where(Message.channel.in_(["sms", "email"]))
            .where(due)
            .order_by(Message.not_before)
            .limit(limit)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                state=MessageState.SENDING,
                lease_until=now + LEASE,
                attempts=Message.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return list(session.scalars(select(Message).where(Message.id.in_(ids))))


def dispatch(
    db: Database,
    *,
    sms: SmsProvider,
    email: EmailSender,
    limit: int = 200,
) -> Dispatched:
    """One round: claim, send outside any transaction, record."""
    report = Dispatched()
    for message in _claim(db, limit):
        try:
            if message.channel == "sms":
                provider_id = sms.send(
                    to=message.to_address or "", body=message.body, reference=message.id
                )
            else:
                provider_id = email.send(
                    OutgoingEmail(
                        to=message.to_address or "",
                        subject=message.subject or "A message for you",
                        text=message.body,
                        message_id=message.id,
                        unsubscribe_url=_unsubscribe_link(message.body),
                    )
                )
        except (SmsError, OSError) as error:
            _retry(db, message, str(error), report)
            continue
        with db.transaction() as session:
            session.execute(
                update(Message)
                .where(Message.id == message.id, Message.state == MessageState.SENDING)
                .values(
                    state=MessageState.SENT if message.channel == "sms" else MessageState.DELIVERED,
                    provider_id=provider_id[:40],
                    sent_at=clock.now(),
                    delivered_at=None if message.channel == "sms" else clock.now(),
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        report.sent += 1
    return report


def _unsubscribe_link(body: str) -> str | None:
    for word in body.split():
        if "/v1/unsubscribe/" in word:
            return word.strip(".,;)")
    return None


def _retry(db: Database, message: Message, error: str, report: Dispatched) -> None:
    give_up = message.attempts >= MAX_ATTEMPTS
    with db.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(
                state=MessageState.FAILED if give_up else MessageState.QUEUED,
                not_before=clock.now() + BACKOFF * message.attempts,
                lease_until=None,
                error=error[:300],
            )
            .execution_options(synchronize_session=False)
        )
    if give_up:
        report.failed += 1
    else:
        report.retried += 1


def receive_sms_report(
    session: Session, *, payload: bytes, signature: str | None, secret: str
) -> str:
    """A provider's delivery report: verified before anything is read, applied once."""
    verify(payload, signature, secret)
    report = json.loads(payload)
    delivered = report.get("status") == "delivered"
    message = session.scalar(select(Message).where(Message.provider_id == str(report.get("id"))))
    if message is None:
        return "ignored: unknown message"
    if message.state in (MessageState.DELIVERED, MessageState.FAILED):
        return "duplicate: already recorded"
    message.state = MessageState.DELIVERED if delivered else MessageState.FAILED
    if delivered:
        message.delivered_at = clock.now()
    else:
        message.error = str(report.get("error_code") or "undelivered")[:300]
    session.flush()
    return message.state.value
