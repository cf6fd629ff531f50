"""Consumer and membership use cases.

Consumers are platform-wide and found again by a keyed hash of their phone number;
memberships belong to one merchant, which sees only its own members.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal, get_owned, require_consumer, require_merchant_staff
from o2oloop.customers import phones
from o2oloop.customers.events import MemberEnrolled
from o2oloop.customers.models import ConsentEvent, Consumer, Membership, MemberSource
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.models import Merchant
from o2oloop.pagination import paginate


def sign_up(session: Session, *, display_name: str = "") -> tuple[Consumer, str]:
    """A consumer joins the platform and gets a consumer key; no personal data is required."""
    consumer = Consumer(id=new_id("csm"), display_name=display_name, created_at=clock.now())
    session.add(consumer)
    session.flush()
    _, token = keys.issue_key(session, role=Role.CONSUMER, consumer_id=consumer.id)
    return consumer, token


def get_self(session: Session, *, principal: Principal) -> Consumer:
    consumer = session.get(Consumer, require_consumer(principal))
    if consumer is None or consumer.erased_at is not None:
        raise NotFound("consumer not found")
    return consumer


# ---- identifying consumers and enrolling members ----------------------------------------


def consumer_by_phone(session: Session, *, phone_hash: str) -> tuple[Consumer, bool]:
    """The consumer with this phone hash, created when the number is new: (consumer, created).

    Safe under concurrent first payments with the same number: the unique hash decides.
    """
    query = select(Consumer).where(Consumer.phone_hash == phone_hash)
    existing = session.scalar(query)
    if existing is not None:
        return existing, False
    consumer = Consumer(
        id=new_id("csm"), display_name="", created_at=clock.now(), phone_hash=phone_hash
    )
    try:
        with session.begin_nested():
            session.add(consumer)
            session.flush()
    except IntegrityError:
        found = session.scalar(query)
        if found is None:
            raise
        return found, False
    return consumer, True


def _anonymous_consumer(session: Session) -> Consumer:
    consumer = Consumer(id=new_id("csm"), display_name="", created_at=clock.now())
    session.add(consumer)
    session.flush()
    return consumer


def enroll(
    session: Session, *, merchant_id: str, consumer_id: str, source: MemberSource
) -> tuple[Membership, bool]:
    """The consumer's membership of the merchant, created when missing: (membership, created).

    Other domains (claims, online purchases) call this too; it never changes an existing
    membership's source.
    """
    query = select(Membership).where(
        Membership.merchant_id == merchant_id, Membership.consumer_id == consumer_id
    )
    existing = session.scalar(query)
    if existing is not None:
        return existing, False
    now = clock.now()
    membership = Membership(
        id=new_id("mem"),
        merchant_id=merchant_id,
        consumer_id=consumer_id,
        source=source,
        marketing_consent=False,
        visit_count=0,
        total_spent=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(membership)
            session.flush()
    except IntegrityError:
        found = session.scalar(query)
        if found is None:
            raise
        return found, False
    events.record(
        session,
        MemberEnrolled(
            merchant_id=merchant_id,
            member_id=membership.id,
            consumer_id=consumer_id,
            source=source.value,
        ),
    )
    return membership, True


def _assign_card(session: Session, membership: Membership, member_card: str) -> None:
    if membership.member_card == member_card:
        return
    holder = session.scalar(
        select(Membership.id).where(
            Membership.merchant_id == membership.merchant_id,
            Membership.member_card == member_card,
        )
    )
    if holder is not None:
        raise Conflict("this member card belongs to another member of this merchant")
    membership.member_card = member_card
    membership.updated_at = clock.now()
    session.flush()


def identify_member(
    session: Session,
    *,
    merchant: Merchant,
    phone: str | None,
    member_card: str | None,
    secret_key: str,
    source: MemberSource,
) -> tuple[Membership | None, str | None, bool]:
    """Who paid, from what the counter knows: (membership, E.164 number, newly enrolled).

    A phone number finds (or creates) the platform-wide consumer and enrolls them with this
    merchant; a member card alone finds the card's member or enrolls a new card-only member.
    Nothing given: an anonymous visit, (None, None, False).
    """
    if phone is not None:
        e164 = phones.normalise(phone, merchant.country)
        consumer, _ = consumer_by_phone(session, phone_hash=phones.phone_hash(e164, secret_key))
        membership, created = enroll(
            session, merchant_id=merchant.id, consumer_id=consumer.id, source=source
        )
        if member_card is not None:
            _assign_card(session, membership, member_card)
        return membership, e164, created
    if member_card is not None:
        found = session.scalar(
            select(Membership).where(
                Membership.merchant_id == merchant.id, Membership.member_card == member_card
            )
        )
        if found is not None:
            return found, None, False
        consumer = _anonymous_consumer(session)
        membership, _ = enroll(
            session, merchant_id=merchant.id, consumer_id=consumer.id, source=source
        )
        _assign_card(session, membership, member_card)
        return membership, None, True
    return None, None, False


def set_consent(
    session: Session,
    membership: Membership,
    *,
    granted: bool,
    recorded_by: str,
    e164: str | None = None,
) -> Membership:
    """Record a marketing-consent decision; an unchanged decision is not logged twice.

    The plain phone number is kept only while some merchant has the consumer's consent.
    """
    now = clock.now()
    changed = membership.marketing_consent != granted or membership.consent_recorded_by is None
    if changed:
        membership.marketing_consent = granted
        if granted:
            membership.consent_given_at = now
        else:
            membership.consent_withdrawn_at = now
        membership.consent_recorded_by = recorded_by
        membership.updated_at = now
        session.add(
            ConsentEvent(
                id=new_id("cev"),
                membership_id=membership.id,
                merchant_id=membership.merchant_id,
                consumer_id=membership.consumer_id,
                marketing_consent=granted,
                recorded_by=recorded_by,
                occurred_at=now,
            )
        )
        session.flush()
    consumer = session.get(Consumer, membership.consumer_id)
    if consumer is not None:
        if granted and e164 is not None:
            consumer.phone_e164 = e164
        elif not granted and consumer.phone_e164 is not None:
            still = session.scalar(
                select(Membership.id)
                .where(Membership.consumer_id == consumer.id, Membership.marketing_consent)
                .limit(1)
            )
            if still is None:
                consumer.phone_e164 = None
        session.flush()
    return membership


def record_visit(session: Session, *, membership_id: str, at: datetime, amount: int) -> None:
    """Fold one visit into the membership's summary, in one UPDATE (safe under concurrency)."""
    session.execute(
        update(Membership)
        .where(Membership.id == membership_id)
        .values(
            visit_count=Membership.visit_count + 1,
            total_spent=Membership.total_spent + amount,
            first_visit_at=case(
                (Membership.first_visit_at.is_(None), at),
                (Membership.first_visit_at > at, at),
                else_=Membership.first_visit_at,
            ),
            last_visit_at=case(
                (Membership.last_visit_at.is_(None), at),
                (Membership.last_visit_at < at, at),
                else_=Membership.last_visit_at,
            ),
            updated_at=clock.now(),
        )
        .execution_options(synchronize_session=False)
    )
    stale = session.get(Membership, membership_id)
    if stale is not None:
        session.expire(stale)


def recorder(principal: Principal) -> str:
    """How a consent decision is attributed in the log."""
    if principal.role is Role.CONSUMER:
        return "consumer"
    if principal.terminal_id:
        return f"terminal:{principal.terminal_id}"
    if principal.staff_id:
        return f"staff:{principal.staff_id}"
    return f"key:{principal.key_id}"


# ---- merchants' view of their members -------------------------------------------------


def visible_phone(membership: Membership, consumer: Consumer | None) -> str | None:
    """A merchant sees a member's number only while that member consents to it."""
    if consumer is None or not membership.marketing_consent:
        return None
    return consumer.phone_e164


def list_members(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    secret_key: str,
    marketing_consent: bool | None = None,
    source: MemberSource | None = None,
    phone: str | None = None,
    member_card: str | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[tuple[Membership, Consumer]], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(Membership).where(Membership.merchant_id == merchant_id)
    if marketing_consent is not None:
        query = query.where(Membership.marketing_consent == marketing_consent)
    if source is not None:
        query = query.where(Membership.source == source)
    if member_card is not None:
        query = query.where(Membership.member_card == member_card)
    if phone is not None:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise NotFound("no merchant with this id")
        try:
            e164 = phones.normalise(phone, merchant.country)
        except InvalidInput:  # a search for what cannot be a phone number finds nobody
            return [], None
        digest = phones.phone_hash(e164, secret_key)
        query = query.join(Consumer, Consumer.id == Membership.consumer_id).where(
            Consumer.phone_hash == digest
        )
    rows, next_cursor = paginate(session, query, Membership.id, cursor=cursor, limit=limit)
    return [(m, _consumer(session, m)) for m in rows], next_cursor


def _consumer(session: Session, membership: Membership) -> Consumer:
    consumer = session.get(Consumer, membership.consumer_id)
    if consumer is None:  # the foreign key makes this impossible
        raise NotFound("no member with this id")
    return consumer


def get_member(
    session: Session, *, principal: Principal, merchant_id: str, member_id: str
) -> tuple[Membership, Consumer]:
    require_merchant_staff(principal, merchant_id)
    membership = get_owned(session, Membership, member_id, merchant_id=merchant_id, what="member")
    return membership, _consumer(session, membership)


def record_member_consent(
    session: Session, *, principal: Principal, merchant_id: str, member_id: str, granted: bool
) -> tuple[Membership, Consumer]:
    """Staff record the consent a member gave (or withdrew) at the counter."""
    membership, consumer = get_member(
        session, principal=principal, merchant_id=merchant_id, member_id=member_id
    )
    set_consent(session, membership, granted=granted, recorded_by=recorder(principal))
    return membership, consumer


# ---- consumers' own consents -------------------------------------------------------------


def list_own_memberships(
    session: Session, *, principal: Principal
) -> list[tuple[Membership, Merchant]]:
    consumer = get_self(session, principal=principal)
    rows = session.execute(
        select(Membership, Merchant)
        .join(Merchant, Merchant.id == Membership.merchant_id)
        .where(Membership.consumer_id == consumer.id)
        .order_by(Membership.id)
    )
    return [(m, mer) for m, mer in rows.tuples()]


def set_own_consent(
    session: Session, *, principal: Principal, merchant_id: str, granted: bool
) -> tuple[Membership, Merchant]:
    """A consumer gives or withdraws marketing consent for one merchant.

    Giving consent to a merchant they are not yet a member of makes them one (source online).
    """
    consumer = get_self(session, principal=principal)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.active:
        raise NotFound("no merchant with this id")
    existing = session.scalar(
        select(Membership).where(
            Membership.merchant_id == merchant.id, Membership.consumer_id == consumer.id
        )
    )
    if existing is None:
        if not granted:
            raise NotFound("you are not a member of this merchant")
        existing, _ = enroll(
            session, merchant_id=merchant.id, consumer_id=consumer.id, source=MemberSource.ONLINE
        )
    set_consent(session, existing, granted=granted, recorded_by="consumer")
    return existing, merchant
