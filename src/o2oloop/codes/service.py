"""Claiming, bulk issuance, redemption at the counter and undo.

Exactly-once comes from the database: a conditional UPDATE of the code's state (zero rows
means someone else used it) or, for batch codes, the primary key of `batch_code_uses`.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_consumer,
    require_merchant_admin,
    require_merchant_staff,
    require_terminal,
)
from o2oloop.codes import codec
from o2oloop.codes.events import CodeClaimed, CodeRedeemed, RedemptionUndone
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeBatch,
    CodeState,
    OfferClaim,
    Redemption,
    RedemptionAttempt,
    RedemptionState,
)
from o2oloop.customers.models import Consumer
from o2oloop.db import new_id
from o2oloop.errors import Conflict, Forbidden, NotFound, ProblemError, RateLimited, RuleViolation
from o2oloop.ledger import service as ledger
from o2oloop.merchants.models import Merchant, Store, Terminal
from o2oloop.money import Money
from o2oloop.offers.models import (
    DiscountKind,
    Offer,
    OfferKind,
    OfferState,
    OfferStoreRedemptions,
)
from o2oloop.offers.rules import (
    OfferRules,
    RedemptionContext,
    Violation,
    code_expires_at,
    discount_for,
    evaluate_claim,
    evaluate_redemption,
)
from o2oloop.offers.service import get_offer, rules_of
from o2oloop.pagination import paginate
from o2oloop.prepared import DriverTransaction, Prepared, dialect_insert, driver

MAX_BATCH = 1_000_000
BATCH_NUMBER_TRIES = 20


class CodeRejected(ProblemError):
    """The one answer the outside gets for unknown, foreign, forged and used codes."""

    status, slug, title = 422, "code-rejected", "Code rejected"

    def __init__(self) -> None:
        super().__init__("this code cannot be redeemed here")


class Refused(Exception):
    """A refused attempt: `public` goes to the caller, `reason` to the merchant's log."""

    def __init__(self, public: ProblemError, reason: str) -> None:
        super().__init__(reason)
        self.public = public
        self.reason = reason


@dataclass(frozen=True)
class Keys:
    """The code key, derived from the platform secret so one setting rotates everything."""

    code: bytes

    @classmethod
    @functools.lru_cache(maxsize=8)  # every request at the counter asks; the secret rarely changes
    def from_secret(cls, secret: str) -> Keys:
        return cls(code=hmac.digest(secret.encode(), b"o2oloop/code-key/v1", "sha256"))

    def serial_for(self, code_id: str) -> bytes:
        # A single code's 64-bit serial is a keyed function of its random id: the database
        # holds only the id and a digest, yet the consumer can always see the code again.
        return hmac.digest(self.code, b"o2oloop/serial/" + code_id.encode(), "sha256")[:8]

    def code_text(self, code_id: str) -> str:
        return codec.format_code(self.serial_for(code_id), self.code)

    def digest(self, serial: bytes, kind: codec.CodeKind = "single") -> bytes:
        return codec.code_digest(serial, self.code, kind=kind)


def _insert(session: Session, table: type) -> Any:
    return dialect_insert(session.get_bind().dialect.name)(table)


def _violations(violations: list[Violation]) -> RuleViolation:
    return RuleViolation(
        "; ".join(v.reason for v in violations),
        violations=[{"rule": v.rule, "reason": v.reason} for v in violations],
    )


# ---- claiming ----------------------------------------------------------------------------


def claim(session: Session, *, principal: Principal, offer_id: str, keys: Keys) -> Code:
    """A consumer claims one code of a free offer; stock and the per-customer limit hold
    under any concurrency because both are conditional UPDATEs."""
    consumer_id = require_consumer(principal, "claiming needs a consumer key")
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is not OfferState.PUBLISHED:
        raise NotFound("no published offer with this id")
    if offer.kind is not OfferKind.COUPON:
        raise Conflict(f"a {offer.kind.value} is bought, not claimed (POST /buy)")
    reserve(session, offer=offer, consumer_id=consumer_id)
    return new_code(session, offer=offer, consumer_id=consumer_id, keys=keys, price_paid=0)


def reserve(session: Session, *, offer: Offer, consumer_id: str) -> None:
    """Take one unit of stock and one of the consumer's limit, or refuse with every reason.

    Both are conditional UPDATEs, so no interleaving of claims or purchases exceeds them.
    """
    merchant = session.get(Merchant, offer.merchant_id)
    assert merchant is not None
    rules = rules_of(offer)
    now = clock.now()
    already = session.scalar(
        select(OfferClaim.claimed).where(
            OfferClaim.offer_id == offer.id, OfferClaim.consumer_id == consumer_id
        )
    )
    ctx = RedemptionContext(
        at=now,
        store_id="",
        store_timezone=merchant.timezone,
        customer_redemptions=already or 0,
        issued_count=offer.issued_count,
        customer_is_new=_is_new_customer(session, merchant.id, consumer_id),
        currency=offer.currency,
    )
    violations = evaluate_claim(rules, ctx)
    if violations:
        raise _violations(violations)

    session.execute(
        _insert(session, OfferClaim)
        .values(offer_id=offer.id, consumer_id=consumer_id, claimed=0)
        .on_conflict_do_nothing()
    )
    bumped = session.execute(
        update(OfferClaim)
        .where(OfferClaim.offer_id == offer.id, OfferClaim.consumer_id == consumer_id)
        .where(
            OfferClaim.claimed < offer.per_customer_limit
            if offer.per_customer_limit is not None
            else True
        )
        .values(claimed=OfferClaim.claimed + 1)
    )
    if bumped.rowcount != 1:
        raise _violations(
            [Violation("per_customer_limit", "you have claimed this offer as often as allowed")]
        )
    _take_stock(session, offer)


def _take_stock(session: Session, offer: Offer) -> None:
    taken = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.state == OfferState.PUBLISHED)
        .where(Offer.issued_count < offer.total_stock if offer.total_stock is not None else True)
        .values(issued_count=Offer.issued_count + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise _violations([Violation("stock", "this offer is sold out")])


def new_code(
    session: Session, *, offer: Offer, consumer_id: str | None, keys: Keys, price_paid: int
) -> Code:
    now = clock.now()
    code_id = new_id("cod")
    code = Code(
        id=code_id,
        merchant_id=offer.merchant_id,
        offer_id=offer.id,
        consumer_id=consumer_id,
        digest=keys.digest(keys.serial_for(code_id)),
        state=CodeState.ACTIVE,
        claimed_at=now,
        expires_at=code_expires_at(rules_of(offer), now),
        price_paid=price_paid,
    )
    session.add(code)
    session.flush()
    events.record(
        session,
        CodeClaimed(
            merchant_id=offer.merchant_id,
            offer_id=offer.id,
            code_id=code_id,
            consumer_id=consumer_id,
            price_paid=price_paid,
        ),
    )
    return code


# ---- bulk issuance -----------------------------------------------------------------------


def issue_batch(
    session: Session, *, principal: Principal, merchant_id: str, offer_id: str, count: int
) -> CodeBatch:
    """A brand campaign's codes in one step: a batch number and a count, not a million rows.

    The batch number is unique by constraint and the codes of a batch are a keyed
    permutation of (batch_no, index), so no two codes can ever coincide.
    """
    offer = get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    require_merchant_admin(principal, merchant_id)
    if not 1 <= count <= MAX_BATCH:
        raise RuleViolation(f"count must be between 1 and {MAX_BATCH:,}")
    if offer.kind is not OfferKind.COUPON:
        raise Conflict("bulk codes are for free coupons; prepaid offers are bought one by one")
    if offer.state in (OfferState.ENDED,):
        raise Conflict("this offer has ended")
    taken = session.execute(
        update(Offer)
        .where(Offer.id == offer.id)
        .where(
            Offer.issued_count + count <= offer.total_stock
            if offer.total_stock is not None
            else True
        )
        .values(issued_count=Offer.issued_count + count)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise RuleViolation("not enough stock left on this offer for that many codes")
    now = clock.now()
    for _ in range(BATCH_NUMBER_TRIES):
        next_no = (session.scalar(select(func.max(CodeBatch.batch_no))) or 0) + 1
        if next_no > codec.MAX_BATCH_NO:
            raise Conflict("the platform has used every batch number")
        batch = CodeBatch(
            id=new_id("bat"),
            merchant_id=merchant_id,
            offer_id=offer.id,
            batch_no=next_no,
            count=count,
            created_at=now,
            expires_at=code_expires_at(rules_of(offer), now),
        )
        try:
            with session.begin_nested():
                session.add(batch)
                session.flush()
        except IntegrityError:
            continue  # a concurrent issuance (of any offer) took this number: the next one
        session.refresh(offer)
        return batch
    raise Conflict("every batch number tried was taken by a concurrent issuance; retry")


def get_batch(
    session: Session, *, principal: Principal, merchant_id: str, batch_id: str
) -> CodeBatch:
    require_merchant_admin(principal, merchant_id)
    batch = get_owned(session, CodeBatch, batch_id, merchant_id=merchant_id, what="code batch")
    return batch


def member_codes(
    session: Session, *, principal: Principal, merchant_id: str, consumer_id: str, limit: int = 50
) -> list[tuple[Code, Offer]]:
    """A member's codes of this merchant's offers, newest first (never the code itself)."""
    require_merchant_staff(principal, merchant_id)
    return [
        (code, offer)
        for code, offer in session.execute(
            select(Code, Offer)
            .join(Offer, Offer.id == Code.offer_id)
            .where(Code.merchant_id == merchant_id, Code.consumer_id == consumer_id)
            .order_by(Code.claimed_at.desc())
            .limit(limit)
        )
    ]


def list_batches(
    session: Session, *, principal: Principal, merchant_id: str, offer_id: str
) -> list[CodeBatch]:
    """An offer's bulk batches, newest first."""
    get_offer(session, principal=principal, merchant_id=merchant_id, offer_id=offer_id)
    return list(
        session.scalars(
            select(CodeBatch)
            .where(CodeBatch.merchant_id == merchant_id, CodeBatch.offer_id == offer_id)
            .order_by(CodeBatch.batch_no.desc())
        )
    )


# ---- redemption --------------------------------------------------------------------------
#
# The counter's hot path: a few dozen microseconds of statements in one short transaction,
# so its statements are `Prepared` (compiled once, run on the driver's connection) and its
# use cases take either a lean `DriverTransaction` or an ORM session. Every refusal is
# raised before the first write, so a refused attempt changes nothing.

_codes, _offers, _batches = Code.__table__, Offer.__table__, CodeBatch.__table__
_redemptions, _attempts = Redemption.__table__, RedemptionAttempt.__table__
_terminals, _stores, _uses = Terminal.__table__, Store.__table__, BatchCodeUse.__table__
_consumers = Consumer.__table__

_REJECTED_SINCE = (
    select(func.count())
    .select_from(_attempts)
    .where(
        _attempts.c.terminal_id == _terminals.c.id,
        _attempts.c.accepted.is_(False),
        _attempts.c.at >= bindparam("since"),
    )
    .scalar_subquery()
)
_AT_WORK = Prepared(
    select(
        _terminals.c.merchant_id,
        _terminals.c.store_id,
        _stores.c.timezone,
        _REJECTED_SINCE.label("rejected"),
    )
    .join(_stores, _stores.c.id == _terminals.c.store_id)
    .where(_terminals.c.id == bindparam("terminal_id"), _terminals.c.active, _stores.c.active)
)
_CODE_BY_DIGEST = Prepared(select(_codes).where(_codes.c.digest == bindparam("digest")))
_BATCH_BY_NO = Prepared(select(_batches).where(_batches.c.batch_no == bindparam("batch_no")))
_BATCH_CODE_USED = Prepared(
    select(_uses.c.code_index).where(
        _uses.c.batch_id == bindparam("batch_id"), _uses.c.code_index == bindparam("index")
    )
)
_OFFER_BY_ID = Prepared(select(_offers).where(_offers.c.id == bindparam("offer_id")))
_OFFER_STATE = Prepared(select(_offers.c.state).where(_offers.c.id == bindparam("offer_id")))
# Rules on a customer's history (per-customer limit, new customers only) are decided by the
# customer's other redemptions, at this offer or anywhere at the merchant: their completions
# take turns on the customer's own row (SQLite's writers take turns anyway).
_LOCK_CUSTOMER = Prepared(
    select(_consumers.c.id).where(_consumers.c.id == bindparam("consumer_id")).with_for_update()
)
_OFFER_PUBLISHED = (
    select(_offers.c.id)
    .where(_offers.c.id == bindparam("of_offer"), _offers.c.state == OfferState.PUBLISHED)
    .exists()
)
_USE_CODE = Prepared(  # the one write only one attempt can win, while the offer is published
    update(_codes)
    .where(
        _codes.c.id == bindparam("code_id"),
        _codes.c.state == CodeState.ACTIVE,
        _OFFER_PUBLISHED,
    )
    .values(state=CodeState.REDEEMED, redeemed_at=bindparam("at"))
)
_USE_BATCH_CODE = Prepared(  # the primary key lets only one attempt in
    lambda insert_into: (
        insert_into(_uses)
        .values(
            batch_id=bindparam("batch_id"),
            code_index=bindparam("index"),
            redemption_id=bindparam("redemption_id"),
        )
        .on_conflict_do_nothing()
        .returning(_uses.c.code_index)
    )
)
_REDEEMED_BY = Prepared(
    select(func.count())
    .select_from(_redemptions)
    .where(
        _redemptions.c.consumer_id == bindparam("consumer_id"),
        _redemptions.c.merchant_id == bindparam("merchant_id"),
        _redemptions.c.offer_id == bindparam("offer_id"),
        _redemptions.c.state == RedemptionState.REDEEMED,
    )
)
_EARLIER_REDEMPTION = Prepared(
    select(_redemptions.c.id)
    .where(
        _redemptions.c.merchant_id == bindparam("merchant_id"),
        _redemptions.c.consumer_id == bindparam("consumer_id"),
        _redemptions.c.state == RedemptionState.REDEEMED,
    )
    .limit(1)
)
_INSERT_REDEMPTION = Prepared(
    insert(_redemptions).values({c.key: bindparam(c.key) for c in _redemptions.columns})
)
_INSERT_ATTEMPT = Prepared(
    insert(_attempts).values({c.key: bindparam(c.key) for c in _attempts.columns if c.key != "id"})
)
_store_counts = OfferStoreRedemptions.__table__
_COUNT_REDEMPTION = Prepared(  # one row per offer and store: only one store's tills share it
    lambda insert_into: (
        insert_into(_store_counts)
        .values(offer_id=bindparam("offer_id"), store_id=bindparam("store_id"), redeemed=1)
        .on_conflict_do_update(
            index_elements=[_store_counts.c.offer_id, _store_counts.c.store_id],
            set_={"redeemed": _store_counts.c.redeemed + 1},
        )
    )
)


@dataclass(frozen=True)
class Located:
    """A verified code found in storage: its row (or batch and index) and its offer's row."""

    offer: Any
    code: Any | None = None
    batch: Any | None = None
    index: int | None = None

    @property
    def consumer_id(self) -> str | None:
        return self.code.consumer_id if self.code else None

    @property
    def claimed_at(self) -> datetime | None:
        return self.code.claimed_at if self.code else self.batch.created_at if self.batch else None

    @property
    def expires_at(self) -> datetime | None:
        return self.code.expires_at if self.code else self.batch.expires_at if self.batch else None


@dataclass(frozen=True)
class Counter:
    """Where the attempt happens: the calling terminal and its store."""

    terminal_id: str
    merchant_id: str
    store_id: str
    store_timezone: str
    rejected_last_minute: int  # codes this terminal had refused, for the rate limit


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


Work = Session | DriverTransaction


def counter_of(work: Work, principal: Principal) -> Counter:
    """The terminal's counter, refused if the terminal or its store has been deactivated."""
    require_terminal(principal)
    since = clock.now() - timedelta(minutes=1)
    row = driver(work).one_or_none(_AT_WORK, terminal_id=principal.terminal_id, since=since)
    if row is None:
        raise Forbidden("this terminal or its store is deactivated")
    return Counter(principal.terminal_id, row.merchant_id, row.store_id, row.timezone, row.rejected)


def check_rate(counter: Counter, *, per_minute: int) -> None:
    """Refuse a terminal that has had too many rejected codes in the last minute."""
    if counter.rejected_last_minute >= per_minute:
        raise RateLimited(
            f"more than {per_minute} rejected codes in a minute at this terminal; wait a minute",
            retry_after_seconds=60,
        )


def locate(work: Work, *, merchant_id: str, text: str, keys: Keys) -> Located:
    """Verify the code offline, then find it; anything not ours is one uniform refusal."""
    tx = driver(work)
    try:
        parsed = codec.parse(text, keys.code)
    except codec.InvalidCode as invalid:
        raise Refused(CodeRejected(), f"invalid code: {invalid.reason}") from None
    if parsed.kind == "single":
        code = tx.one_or_none(_CODE_BY_DIGEST, digest=keys.digest(parsed.serial))
        if code is None:
            raise Refused(CodeRejected(), "well-formed code that was never issued")
        if code.merchant_id != merchant_id:
            raise Refused(CodeRejected(), "code of another merchant")
        if code.state is not CodeState.ACTIVE:
            raise Refused(CodeRejected(), f"code is {code.state.value}")
        return Located(offer=tx.one(_OFFER_BY_ID, offer_id=code.offer_id), code=code)
    batch = tx.one_or_none(_BATCH_BY_NO, batch_no=parsed.batch_no)
    if batch is None:
        raise Refused(CodeRejected(), "batch code of an unknown batch")
    if batch.merchant_id != merchant_id:
        raise Refused(CodeRejected(), "batch code of another merchant")
    assert parsed.index is not None
    if parsed.index >= batch.count:
        raise Refused(CodeRejected(), "batch code beyond the issued count")
    if tx.scalar(_BATCH_CODE_USED, batch_id=batch.id, index=parsed.index) is not None:
        raise Refused(CodeRejected(), "batch code already used")
    offer = tx.one(_OFFER_BY_ID, offer_id=batch.offer_id)
    return Located(offer=offer, batch=batch, index=parsed.index)


@dataclass(frozen=True)
class CheckedRedemption:
    """An attempt that passed every check needing no write: what `complete_redemption` stores."""

    counter: Counter
    found: Located
    rules: OfferRules
    redemption: NewRedemption  # not stored yet

    @property
    def moves_money(self) -> bool:
        """A paid voucher: completing it posts to the ledger, which needs an ORM session."""
        return self.found.code is not None and bool(self.found.code.price_paid)


def check_redemption(
    work: Work,
    *,
    principal: Principal,
    code: str,
    bill_amount: int | None,
    keys: Keys,
    rate_per_minute: int,
) -> CheckedRedemption:
    """Everything about an attempt that only reads: terminal, rate, code, offer, rules.

    Raises `Refused`. Read-only, so the counter can run it before its turn to write.
    """
    tx = driver(work)
    counter = counter_of(tx, principal)
    check_rate(counter, per_minute=rate_per_minute)
    found = locate(tx, merchant_id=counter.merchant_id, text=code, keys=keys)
    offer, now = found.offer, clock.now()
    if offer.state is not OfferState.PUBLISHED:
        raise _offer_not_published(offer.state)
    rules = rules_of(offer)
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
        discount_amount=_discount(offer, bill_amount),
        state=RedemptionState.REDEEMED,
        ledger_transaction_id=None,
        redeemed_at=now,
    )
    return CheckedRedemption(counter=counter, found=found, rules=rules, redemption=redemption)


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
    if found.code is None:  # a single code's own write checks this too (below)
        _refuse_unless_published(tx, offer.id)
    if found.consumer_id is not None and (rules.per_customer_limit or rules.new_customers_only):
        tx.one(_LOCK_CUSTOMER, consumer_id=found.consumer_id)
        _refuse_violations(
            tx, counter, found, rules, redemption.bill_amount, redemption.redeemed_at
        )
    if found.code is not None:
        used = tx.execute(
            _USE_CODE, code_id=found.code.id, of_offer=offer.id, at=redemption.redeemed_at
        )
        if used != 1:
            _refuse_unless_published(tx, offer.id)
            raise Refused(CodeRejected(), "code used by a concurrent attempt")
    else:
        assert found.batch is not None
        claimed = tx.scalar(
            _USE_BATCH_CODE,
            batch_id=found.batch.id,
            index=found.index,
            redemption_id=redemption.id,
        )
        if claimed is None:
            raise Refused(CodeRejected(), "batch code used by a concurrent attempt")
    # From here on nothing refuses: the code is ours.
    if checked.moves_money:
        redemption.ledger_transaction_id = _release_from_escrow(
            tx.session, offer=offer, price_paid=found.code.price_paid, redemption_id=redemption.id
        )
    tx.execute(_INSERT_REDEMPTION, **_columns(redemption, _redemptions))
    record_attempt(
        tx, counter=counter, accepted=True, reason="redeemed", redemption_id=redemption.id
    )
    events.record(tx, _redeemed_event(redemption, offer.currency))
    # Last, so the store's count of this offer (shared by its tills) is held only until commit.
    tx.execute(_COUNT_REDEMPTION, offer_id=offer.id, store_id=counter.store_id)
    return Redeemed(
        redemption=redemption,
        offer_title=offer.title,
        offer_kind=offer.kind.value,
        benefit=_benefit(offer, redemption.discount_amount),
        currency=offer.currency,
    )


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
    state = tx.scalar(_OFFER_STATE, offer_id=offer_id)
    if state is not OfferState.PUBLISHED:
        raise _offer_not_published(state)


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
    violations = evaluate_redemption(
        rules,
        RedemptionContext(
            at=now,
            store_id=counter.store_id,
            store_timezone=counter.store_timezone,
            claimed_at=found.claimed_at,
            bill_amount=bill_amount,
            customer_redemptions=(
                _redeemed_by(tx, offer, consumer_id) if rules.per_customer_limit else 0
            ),
            issued_count=offer.issued_count,
            customer_is_new=(
                _is_new_customer(tx, offer.merchant_id, consumer_id)
                if rules.new_customers_only
                else False
            ),
            currency=offer.currency,
        ),
    )
    if found.expires_at is not None and now >= found.expires_at:
        violations.append(Violation("expired", "this code has expired"))
    if (
        offer.discount_kind is DiscountKind.PERCENT_OFF
        and bill_amount is None
        and not any(v.rule == "min_spend" for v in violations)
    ):
        violations.append(Violation("bill_amount", "a percent-off coupon needs the bill amount"))
    if violations:
        raise Refused(_violations(violations), "; ".join(v.reason for v in violations))


def _columns(instance: Any, table: Any) -> dict[str, Any]:
    return {column.key: getattr(instance, column.key) for column in table.columns}


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


def _discount(offer: Any, bill_amount: int | None) -> int:
    if offer.kind is OfferKind.COUPON and offer.discount_kind is not None:
        if bill_amount is None:
            return offer.amount_off or 0
        return discount_for(
            offer.discount_kind.value,
            bill_amount,
            amount_off=offer.amount_off,
            percent_off_bps=offer.percent_off_bps,
            cap=offer.discount_cap,
        )
    if offer.kind is OfferKind.VOUCHER:
        return offer.face_value or 0
    return 0


def _benefit(offer: Any, discount_amount: int) -> str:
    """What the cashier gives, in words."""
    if offer.kind is OfferKind.VOUCHER:
        return f"give the set: {offer.includes or offer.title}"
    if offer.discount_kind is DiscountKind.PERCENT_OFF:
        return f"{(offer.percent_off_bps or 0) / 100:g}% off"
    return f"{discount_amount} off"


def _redeemed_by(tx: DriverTransaction, offer: Any, consumer_id: str | None) -> int:
    if consumer_id is None:
        return 0
    return tx.scalar(
        _REDEEMED_BY, consumer_id=consumer_id, merchant_id=offer.merchant_id, offer_id=offer.id
    )


def _is_new_customer(work: Work, merchant_id: str, consumer_id: str | None) -> bool:
    """New to this merchant: never redeemed anything here."""
    if consumer_id is None:
        return False
    earlier = driver(work).scalar(
        _EARLIER_REDEMPTION, merchant_id=merchant_id, consumer_id=consumer_id
    )
    return earlier is None


def record_attempt(
    work: Work,
    *,
    counter: Counter,
    accepted: bool,
    reason: str,
    redemption_id: str | None = None,
) -> None:
    driver(work).execute(
        _INSERT_ATTEMPT,
        merchant_id=counter.merchant_id,
        store_id=counter.store_id,
        terminal_id=counter.terminal_id,
        at=clock.now(),
        accepted=accepted,
        reason=reason[:500],
        redemption_id=redemption_id,
    )


def record_refusal(work: Work, *, principal: Principal, reason: str) -> None:
    tx = driver(work)
    record_attempt(tx, counter=counter_of(tx, principal), accepted=False, reason=reason)


def undo(
    session: Session, *, principal: Principal, redemption_id: str, grace: timedelta
) -> Redemption:
    """Take back a redemption within the grace period, at the same store."""
    counter = counter_of(session, principal)
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or redemption.store_id != counter.store_id:
        raise NotFound("no redemption with this id at this store")
    if redemption.state is RedemptionState.UNDONE:
        raise Conflict("this redemption has already been undone")
    if clock.now() - redemption.redeemed_at > grace:
        minutes = int(grace.total_seconds() // 60)
        raise Conflict(f"a redemption can be undone only within {minutes} minutes")
    undone = session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.state == RedemptionState.REDEEMED)
        .values(state=RedemptionState.UNDONE, undone_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if undone.rowcount != 1:
        raise Conflict("this redemption has already been undone")
    if redemption.ledger_transaction_id is not None:
        ledger.reverse(session, redemption.ledger_transaction_id, memo=f"undo {redemption.id}")
    if redemption.code_id is not None:
        session.execute(
            update(Code)
            .where(Code.id == redemption.code_id, Code.state == CodeState.REDEEMED)
            .values(state=CodeState.ACTIVE, redeemed_at=None)
            .execution_options(synchronize_session=False)
        )
    else:
        use = session.get(BatchCodeUse, (redemption.batch_id, redemption.code_index))
        if use is not None:
            session.delete(use)
    session.execute(
        update(OfferStoreRedemptions)
        .where(
            OfferStoreRedemptions.offer_id == redemption.offer_id,
            OfferStoreRedemptions.store_id == redemption.store_id,
        )
        .where(OfferStoreRedemptions.redeemed > 0)  # never below zero
        .values(redeemed=OfferStoreRedemptions.redeemed - 1)
        .execution_options(synchronize_session=False)
    )
    events.record(
        session,
        RedemptionUndone(
            merchant_id=redemption.merchant_id,
            store_id=redemption.store_id,
            offer_id=redemption.offer_id,
            redemption_id=redemption.id,
            code_id=redemption.code_id,
        ),
    )
    session.flush()
    session.refresh(redemption)
    return redemption


def list_attempts(
    session: Session, *, principal: Principal, merchant_id: str, cursor: int | None, limit: int
) -> list[RedemptionAttempt]:
    """The merchant's own log of every attempt, newest first, with precise reasons."""
    require_merchant_staff(principal, merchant_id)
    query = select(RedemptionAttempt).where(RedemptionAttempt.merchant_id == merchant_id)
    if cursor is not None:
        query = query.where(RedemptionAttempt.id < cursor)
    return list(session.scalars(query.order_by(RedemptionAttempt.id.desc()).limit(limit)))


# ---- wallet ------------------------------------------------------------------------------


def wallet_state(code: Code, now: datetime) -> str:
    """What the consumer sees: active, used, expired or refunded."""
    if code.state is CodeState.REDEEMED:
        return "used"
    if code.state is CodeState.ACTIVE and code.expires_at is not None and now >= code.expires_at:
        return "expired"
    return code.state.value


def wallet(
    session: Session, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[tuple[Code, Offer]], str | None]:
    require_consumer(principal, "the wallet needs a consumer key")
    codes, next_cursor = paginate(
        session,
        select(Code).where(Code.consumer_id == principal.consumer_id),
        Code.id,
        cursor=cursor,
        limit=limit,
    )
    offers = {
        o.id: o
        for o in session.scalars(select(Offer).where(Offer.id.in_({c.offer_id for c in codes})))
    }
    return [(c, offers[c.offer_id]) for c in codes], next_cursor


def own_code(session: Session, *, principal: Principal, code_id: str) -> Code:
    require_consumer(principal)
    code = session.get(Code, code_id)
    if code is None or code.consumer_id != principal.consumer_id:
        raise NotFound("no code with this id in your wallet")
    return code
