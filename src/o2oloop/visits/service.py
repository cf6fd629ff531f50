"""Recording consumption at the store and reading it back, scoped by merchant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import Principal, require_merchant_staff, require_terminal
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.customers import service as customers
from o2oloop.customers.models import Membership, MemberSource
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.models import Merchant, Store
from o2oloop.pagination import paginate
from o2oloop.visits import schemas
from o2oloop.visits.events import VisitRecorded
from o2oloop.visits.models import Visit, VisitSource

# A terminal's clock may run a little ahead; anything further is a mistake, not a payment.
MAX_FUTURE = timedelta(minutes=5)
# Offline terminals sync late, but not this late: older payments are refused, not guessed.
MAX_AGE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    visit: Visit
    membership: Membership | None
    new_member: bool


def check_occurred_at(occurred_at: datetime | None, now: datetime) -> datetime:
    """The payment time, checked against now: at most 5 minutes ahead and 30 days back."""
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a timezone, e.g. 2026-06-01T12:00:00+08:00")
    if occurred_at > now + MAX_FUTURE:
        raise InvalidInput(
            "occurred_at is in the future; check the terminal's clock",
            field="occurred_at",
            now=now.isoformat(),
        )
    if occurred_at < now - MAX_AGE:
        raise InvalidInput(
            f"occurred_at is more than {MAX_AGE.days} days ago; such old payments are not accepted",
            field="occurred_at",
            now=now.isoformat(),
        )
    return occurred_at.astimezone(UTC)


def _terminal_context(session: Session, principal: Principal) -> tuple[Merchant, Store]:
    require_terminal(principal, "payments are recorded by a terminal key")
    merchant = session.get(Merchant, principal.merchant_id)
    store = session.get(Store, principal.store_id)
    if merchant is None or store is None or store.merchant_id != merchant.id:
        raise NotFound("terminal not found")
    if not merchant.active or not store.active:
        raise Conflict("this store no longer takes payments")
    return merchant, store


def record_payment(
    session: Session, *, principal: Principal, data: schemas.PaymentCreate, secret_key: str
) -> PaymentOutcome:
    """A terminal reports a payment: it becomes a visit of the terminal's store.

    A phone number (or member card) enrolls the payer as a member of the merchant, with the
    consent the cashier recorded. Everything is checked before anything is written.
    """
    merchant, store = _terminal_context(session, principal)
    if data.currency is not None and data.currency != merchant.currency:
        raise InvalidInput(
            f"currency must be the merchant's currency {merchant.currency}", field="currency"
        )
    occurred_at = check_occurred_at(data.occurred_at, clock.now())
    if data.marketing_consent is not None and data.phone is None and data.member_card is None:
        raise InvalidInput(
            "marketing_consent needs the customer's phone or member card", field="marketing_consent"
        )
    redemption = _redemption(session, merchant, data.redemption_id)
    membership, e164, created = customers.identify_member(
        session,
        merchant=merchant,
        phone=data.phone,
        member_card=data.member_card,
        secret_key=secret_key,
        source=MemberSource.POS,
    )
    if membership is None and redemption is not None and redemption.consumer_id is not None:
        # The code was claimed online by a known consumer: the visit is theirs.
        membership, created = customers.enroll(
            session,
            merchant_id=merchant.id,
            consumer_id=redemption.consumer_id,
            source=MemberSource.CLAIM,
        )
    if membership is not None and data.marketing_consent is not None:
        customers.set_consent(
            session,
            membership,
            granted=data.marketing_consent,
            recorded_by=customers.recorder(principal),
            e164=e164,
        )
    visit = add_visit(
        session,
        merchant_id=merchant.id,
        store_id=store.id,
        terminal_id=principal.terminal_id,
        membership=membership,
        amount=data.amount,
        currency=merchant.currency,
        occurred_at=occurred_at,
        source=VisitSource.POS,
        code=data.code,
        redemption_id=redemption.id if redemption is not None else None,
        items=[item.model_dump() for item in data.items],
    )
    if membership is not None:
        session.refresh(membership)
    return PaymentOutcome(visit=visit, membership=membership, new_member=created)


def _redemption(session: Session, merchant: Merchant, redemption_id: str | None) -> Any:
    """The merchant's live redemption with this id, not yet linked to a visit."""
    if redemption_id is None:
        return None
    redemption = session.get(Redemption, redemption_id)
    if (
        redemption is None
        or redemption.merchant_id != merchant.id
        or redemption.state is not RedemptionState.REDEEMED
    ):
        raise InvalidInput(
            "redemption_id is not a current redemption of this merchant", field="redemption_id"
        )
    linked = session.scalar(select(Visit.id).where(Visit.redemption_id == redemption.id))
    if linked is not None:
        raise Conflict("this redemption is already linked to a visit", visit_id=linked)
    return redemption


def add_visit(
    session: Session,
    *,
    merchant_id: str,
    store_id: str,
    terminal_id: str | None,
    membership: Membership | None,
    amount: int,
    currency: str,
    occurred_at: datetime,
    source: VisitSource,
    code: str | None = None,
    redemption_id: str | None = None,
    items: list[dict[str, Any]] | None = None,
) -> Visit:
    """Write one visit and fold it into the member's summary (for every source of visits)."""
    visit = Visit(
        id=new_id("vis"),
        merchant_id=merchant_id,
        store_id=store_id,
        terminal_id=terminal_id,
        consumer_id=membership.consumer_id if membership else None,
        member_id=membership.id if membership else None,
        amount=amount,
        currency=currency,
        occurred_at=occurred_at,
        source=source,
        code=code,
        redemption_id=redemption_id,
        items=items or [],
        created_at=clock.now(),
    )
    session.add(visit)
    session.flush()
    if membership is not None:
        customers.record_visit(session, membership_id=membership.id, at=occurred_at, amount=amount)
    events.record(
        session,
        VisitRecorded(
            merchant_id=merchant_id,
            store_id=store_id,
            visit_id=visit.id,
            member_id=visit.member_id,
            amount=amount,
            currency=currency,
            visited_at=occurred_at,
            redemption_id=redemption_id,
        ),
    )
    return visit


def list_visits(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str | None = None,
    member_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Visit], str | None]:
    require_merchant_staff(principal, merchant_id)
    if since is not None and until is not None and since > until:
        raise InvalidInput("since must not be after until")
    query = select(Visit).where(Visit.merchant_id == merchant_id)
    if store_id is not None:
        query = query.where(Visit.store_id == store_id)
    if member_id is not None:
        query = query.where(Visit.member_id == member_id)
    if since is not None:
        query = query.where(Visit.occurred_at >= since)
    if until is not None:
        query = query.where(Visit.occurred_at < until)
    return paginate(session, query, Visit.id, cursor=cursor, limit=limit)


def member_visits(session: Session, *, merchant_id: str, member_id: str, limit: int) -> list[Visit]:
    """The member's latest visits, newest first (the caller has checked the merchant)."""
    query = (
        select(Visit)
        .where(Visit.merchant_id == merchant_id, Visit.member_id == member_id)
        .order_by(Visit.occurred_at.desc(), Visit.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
