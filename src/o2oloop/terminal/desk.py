"""What the cashier's page does, composed from the counter's existing use cases.

Check a code (read only) and show what to give; accept it (the counter's exactly-once
redemption); undo within the grace period; record the payment with the payer's phone and
their answer to the consent question; spend stored value. Refusals are logged for the
merchant exactly as the API logs them, and the cashier sees the same uniform answer the
API gives, worded for the counter; only a typo (the public check character) is told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal
from o2oloop.codes import codec
from o2oloop.codes import service as codes
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.customers import phones
from o2oloop.customers.models import Consumer
from o2oloop.db import Database
from o2oloop.errors import NotFound, ProblemError, RuleViolation
from o2oloop.merchants.models import Merchant, Store, Terminal
from o2oloop.money import Money
from o2oloop.offers.models import DiscountKind, Offer, OfferKind
from o2oloop.stored_value import service as stored_value
from o2oloop.visits import schemas as visit_schemas
from o2oloop.visits import service as visits


@dataclass(frozen=True)
class Counter:
    """The paired terminal, its store and merchant, as the page shows them."""

    terminal: Terminal
    store: Store
    merchant: Merchant


@dataclass(frozen=True)
class Give:
    """What the cashier hands over, in parts the page words in the reader's language."""

    kind: str  # "amount_off", "percent_off" or "set"
    percent: float | None = None
    includes: str = ""


def give_for(offer: Any) -> Give:
    if offer.kind is OfferKind.VOUCHER:
        return Give("set", includes=offer.includes or offer.title)
    if offer.discount_kind is DiscountKind.PERCENT_OFF:
        return Give("percent_off", percent=(offer.percent_off_bps or 0) / 100)
    return Give("amount_off")


@dataclass(frozen=True)
class Preview:
    """A code that would be accepted now: what to give and what is still due."""

    code: str
    offer_title: str
    give: Give
    discount: Money
    amount_due: Money | None
    bill: Money | None


@dataclass(frozen=True)
class Refusal:
    """Why not, for the cashier: `typo` when the check character disagrees."""

    message: str
    typo: bool = False
    reasons: tuple[str, ...] = ()


UNIFORM = "This code cannot be redeemed here."


def counter(session: Session, principal: Principal) -> Counter:
    """The calling terminal at work; 404 once it, its store or its merchant is switched off."""
    terminal = session.get(Terminal, principal.terminal_id or "")
    store = session.get(Store, terminal.store_id) if terminal else None
    merchant = session.get(Merchant, store.merchant_id) if store else None
    if not (terminal and terminal.active and store and store.active and merchant):
        raise NotFound("this terminal is not at work")
    return Counter(terminal, store, merchant)


def is_typo(text: str) -> bool:
    """Only the public check character: a well-formed code whose check disagrees."""
    try:
        compact = codec.normalise(text)
    except codec.InvalidCode:
        return False
    try:
        codec.qr_payload(compact)
    except codec.InvalidCode:
        return True
    return False


def _refusal(public: ProblemError, text: str) -> Refusal:
    if isinstance(public, RuleViolation):
        reasons = tuple(v["reason"] for v in public.extensions.get("violations", ()))
        return Refusal(message=public.detail, reasons=reasons or (public.detail,))
    if isinstance(public, codes.CodeRejected):
        if is_typo(text):
            return Refusal(message="This code has a typo: check it against the screen.", typo=True)
        return Refusal(message=UNIFORM)
    return Refusal(message=public.detail)


def check(
    db: Database,
    *,
    principal: Principal,
    code: str,
    bill: int | None,
    keys: codes.Keys,
    rate_per_minute: int,
) -> Preview | Refusal:
    """Would this code be accepted now? Read only; a refusal is logged as the API logs it."""
    try:
        with db.reading() as session:
            checked = codes.check_redemption(
                session,
                principal=principal,
                code=code,
                bill_amount=bill,
                keys=keys,
                rate_per_minute=rate_per_minute,
            )
            currency = checked.found.offer.currency
            offer = checked.found.offer
            discount = checked.redemption.discount_amount
            preview = Preview(
                code=codec.group(codec.normalise(code)),
                offer_title=offer.title,
                give=give_for(offer),
                discount=Money(discount, currency),
                amount_due=None if bill is None else Money(max(0, bill - discount), currency),
                bill=None if bill is None else Money(bill, currency),
            )
    except codes.Refused as refused:
        with db.transaction() as session:
            codes.record_refusal(session, principal=principal, reason=refused.reason)
        return _refusal(refused.public, code)
    return preview


@dataclass(frozen=True)
class Accepted:
    redemption_id: str
    offer_title: str
    give: Give
    discount: Money
    amount_due: Money | None
    code: str


def accept(
    db: Database,
    *,
    principal: Principal,
    code: str,
    bill: int | None,
    keys: codes.Keys,
    rate_per_minute: int,
) -> Accepted | Refusal:
    """Redeem, exactly once (the counter's own use case); a refusal is logged on its own."""
    try:
        with db.transaction() as session:
            redeemed = codes.redeem(
                session,
                principal=principal,
                code=code,
                bill_amount=bill,
                keys=keys,
                rate_per_minute=rate_per_minute,
            )
            give = give_for(session.get(Offer, redeemed.redemption.offer_id))
    except codes.Refused as refused:
        with db.transaction() as session:
            codes.record_refusal(session, principal=principal, reason=refused.reason)
        return _refusal(refused.public, code)
    due = redeemed.amount_due
    return Accepted(
        redemption_id=redeemed.redemption.id,
        offer_title=redeemed.offer_title,
        give=give,
        discount=Money(redeemed.redemption.discount_amount, redeemed.currency),
        amount_due=None if due is None else Money(due, redeemed.currency),
        code=codec.group(codec.normalise(code)),
    )


def recent(
    session: Session, *, principal: Principal, grace: timedelta, limit: int = 5
) -> list[Redemption]:
    """This terminal's latest redemptions still inside the undo grace period."""
    return list(
        session.scalars(
            select(Redemption)
            .where(
                Redemption.terminal_id == principal.terminal_id,
                Redemption.state == RedemptionState.REDEEMED,
                Redemption.redeemed_at >= clock.now() - grace,
            )
            .order_by(Redemption.redeemed_at.desc())
            .limit(limit)
        )
    )


def record_payment(
    session: Session,
    *,
    principal: Principal,
    amount: int,
    phone: str | None,
    consent: bool | None,
    redemption_id: str | None,
    secret_key: str,
) -> visits.PaymentOutcome:
    """The payment as the counter reports it: a visit, and the payer a member if they gave
    their phone; their answer to the consent question is recorded as they gave it."""
    data = visit_schemas.PaymentCreate(
        amount=amount,
        phone=phone or None,
        marketing_consent=consent if phone else None,
        redemption_id=redemption_id or None,
    )
    return visits.record_payment(session, principal=principal, data=data, secret_key=secret_key)


def spend(
    session: Session,
    *,
    principal: Principal,
    phone: str,
    amount: int,
    region: str,
    secret_key: str,
) -> Money:
    """Pay from the customer's stored value here, found by their phone; the balance left."""
    e164 = phones.normalise(phone, region)
    consumer_id = session.scalar(
        select(Consumer.id).where(Consumer.phone_hash == phones.phone_hash(e164, secret_key))
    )
    if consumer_id is None:
        raise stored_value.InsufficientFunds("no stored value for this phone here")
    _, left = stored_value.spend_at_terminal(
        session, principal=principal, consumer_id=consumer_id, amount=amount
    )
    return left
