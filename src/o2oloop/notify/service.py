"""Messages: how a use case queues one (inside its transaction), quiet hours, the consumer's
inbox, unsubscribe links, and the consumer's own contact details."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal
from o2oloop.customers import service as customers
from o2oloop.customers.events import ConsumerErased
from o2oloop.customers.models import Consumer, Membership
from o2oloop.errors import InvalidInput, NotFound
from o2oloop.notify.models import Message, MessageState, SandboxSms
from o2oloop.pagination import paginate

# What a message costs the sender, in minor units (an SMS segment; the others are free here).
COST = {"inbox": 0, "sms": 5, "email": 0, "webhook": 0}


def in_quiet_hours(local: datetime, start: int, end: int) -> bool:
    """Whether a local time falls in quiet hours [start, end) that may wrap midnight."""
    hour = local.hour
    return (start <= hour or hour < end) if start > end else start <= hour < end


def not_before(now: datetime, timezone: str, *, start: int, end: int) -> datetime:
    """`now`, or the end of quiet hours in `timezone` when `now` falls inside them."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if start == end or not in_quiet_hours(local, start, end):
        return now
    wake = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if wake <= local:
        wake += timedelta(days=1)
    return wake.astimezone(now.tzinfo)


@functools.cache
def _zones() -> frozenset[str]:
    # available_timezones() walks the tz database on every call (milliseconds).
    return frozenset(available_timezones())


def zone_of(consumer_timezone: str | None, fallback: str) -> str:
    if consumer_timezone and consumer_timezone in _zones():
        return consumer_timezone
    return fallback


# ---- unsubscribe links ---------------------------------------------------------------------


def _unsubscribe_key(secret_key: str) -> bytes:
    return hmac.digest(secret_key.encode(), b"o2oloop/unsubscribe/v1", "sha256")


def unsubscribe_token(member_id: str, secret_key: str) -> str:
    """A token naming one membership, signed so nobody can unsubscribe someone else."""
    tag = hmac.digest(_unsubscribe_key(secret_key), member_id.encode(), hashlib.sha256)[:16]
    return f"{member_id}.{base64.urlsafe_b64encode(tag).decode().rstrip('=')}"


def unsubscribe_url(public_url: str, member_id: str, secret_key: str) -> str:
    return f"{public_url}/v1/unsubscribe/{unsubscribe_token(member_id, secret_key)}"


def unsubscribe_signer(public_url: str, secret_key: str) -> Callable[[str], str]:
    """`unsubscribe_url` for many members under one derived key (a send batch's links)."""
    key = _unsubscribe_key(secret_key)
    base = f"{public_url}/v1/unsubscribe/"

    def url(member_id: str) -> str:
        tag = hmac.digest(key, member_id.encode(), hashlib.sha256)[:16]
        return f"{base}{member_id}.{base64.urlsafe_b64encode(tag).decode().rstrip('=')}"

    return url


def _member_of(token: str, secret_key: str) -> str:
    member_id, _, tag = token.partition(".")
    expected = unsubscribe_token(member_id, secret_key).partition(".")[2]
    if not member_id or not hmac.compare_digest(tag, expected):
        raise NotFound("this unsubscribe link is not valid")
    return member_id


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    member_id: str
    merchant_id: str
    already: bool


def unsubscribe(session: Session, *, token: str, secret_key: str) -> Unsubscribed:
    """One click: the member's marketing consent for that merchant is withdrawn (and logged)."""
    membership = session.get(Membership, _member_of(token, secret_key))
    if membership is None:
        raise NotFound("this unsubscribe link is not valid")
    already = not membership.marketing_consent
    customers.set_consent(session, membership, granted=False, recorded_by="unsubscribe-link")
    return Unsubscribed(membership.id, membership.merchant_id, already)


# ---- the consumer's inbox and contact details ----------------------------------------------


def inbox(
    session: Session, *, principal: Principal, unread: bool = False, cursor: str | None, limit: int
) -> tuple[list[Message], str | None]:
    consumer_id = customers.require_consumer(principal)
    query = select(Message).where(Message.consumer_id == consumer_id, Message.channel == "inbox")
    if unread:
        query = query.where(Message.read_at.is_(None))
    return paginate(session, query, Message.id, cursor=cursor, limit=limit)


def mark_read(session: Session, *, principal: Principal, message_id: str) -> Message:
    consumer_id = customers.require_consumer(principal)
    message = session.get(Message, message_id)
    if message is None or message.consumer_id != consumer_id or message.channel != "inbox":
        raise NotFound("no message with this id")
    if message.read_at is None:
        message.read_at = clock.now()
        session.flush()
    return message


def set_contact(
    session: Session,
    *,
    principal: Principal,
    email: str | None,
    timezone: str | None,
    birthday: date | None,
) -> Consumer:
    """The consumer gives (or clears) their email, timezone and birthday themselves."""
    consumer = customers.get_self(session, principal=principal)
    if timezone is not None and timezone not in _zones():
        raise InvalidInput(f"timezone {timezone!r} is not an IANA zone", field="timezone")
    if birthday is not None and birthday >= clock.now().date():
        raise InvalidInput("birthday must be in the past", field="birthday")
    consumer.email, consumer.timezone, consumer.birthday = email, timezone, birthday
    session.flush()
    return consumer


def erase(session: Session, consumer_id: str) -> None:
    """A consumer's erasure empties their messages (bodies carry their name and codes, the
    address their phone or email) and the sandbox provider's copies of their texts."""
    mine = select(Message.id).where(Message.consumer_id == consumer_id)
    session.execute(
        update(SandboxSms)
        .where(SandboxSms.reference.in_(mine))
        .values(to="", body="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Message)
        .where(Message.consumer_id == consumer_id)
        .values(body="", subject="", to_address=None)
        .execution_options(synchronize_session=False)
    )


def on_consumer_erased(session: Session, event: ConsumerErased) -> None:
    """The worker's handler of `consumer.erased` (idempotent: erasing twice changes nothing)."""
    erase(session, event.consumer_id)


def queued_state(channel: str) -> MessageState:
    """An inbox message is delivered the moment it is written; a webhook message is sent
    when its event is committed to the outbox (the merchant's webhook carries it on); SMS
    and email wait for the dispatcher."""
    if channel == "inbox":
        return MessageState.DELIVERED
    return MessageState.SENT if channel == "webhook" else MessageState.QUEUED
