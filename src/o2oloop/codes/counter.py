"""Who is at the counter and which code they hold: the terminal, its store, the code found.

Everything here only reads (but for the merchant's log of attempts), so the counter can
check an attempt before its turn to write. Anything not ours is one uniform refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_terminal
from o2oloop.codes import codec
from o2oloop.codes import statements as sql
from o2oloop.codes.keys import Keys
from o2oloop.codes.models import CodeState
from o2oloop.codes.refusals import CodeRejected, Refused
from o2oloop.errors import Forbidden, RateLimited
from o2oloop.prepared import DriverTransaction, driver

Work = Session | DriverTransaction


@dataclass(frozen=True)
class Counter:
    """Where the attempt happens: the calling terminal and its store."""

    terminal_id: str
    merchant_id: str
    store_id: str
    store_timezone: str
    rejected_last_minute: int  # codes this terminal had refused, for the rate limit


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


def counter_of(work: Work, principal: Principal, *, at: datetime | None = None) -> Counter:
    """The terminal's counter, refused if the terminal or its store has been deactivated."""
    terminal_id = require_terminal(principal)
    tx = driver(work)
    since = (at or clock.now()) - timedelta(minutes=1)
    if tx.has_ahead(sql.AT_WORK_OF_KEY, key_id=principal.key_id, since=since):
        row = tx.one_or_none(sql.AT_WORK_OF_KEY, key_id=principal.key_id, since=since)
    else:
        row = tx.one_or_none(sql.AT_WORK, terminal_id=terminal_id, since=since)
    if row is None:
        raise Forbidden("this terminal or its store is deactivated")
    return Counter(terminal_id, row.merchant_id, row.store_id, row.timezone, row.rejected)


def check_rate(counter: Counter, *, per_minute: int) -> None:
    """Refuse a terminal that has had too many rejected codes in the last minute."""
    if counter.rejected_last_minute >= per_minute:
        raise RateLimited(
            f"more than {per_minute} rejected codes in a minute at this terminal; wait a minute",
            retry_after_seconds=60,
        )


def locate(work: Work, *, merchant_id: str, text: str, keys: Keys) -> Located:
    """Verify the code offline (a forgery never reaches the database), then find it."""
    tx = driver(work)
    try:
        parsed = codec.parse(text, keys.code)
    except codec.InvalidCode as invalid:
        raise Refused(CodeRejected(), f"invalid code: {invalid.reason}") from None
    if parsed.kind == "single":
        return _single(tx, merchant_id, keys.digest(parsed.serial))
    assert parsed.batch_no is not None and parsed.index is not None
    return _of_batch(tx, merchant_id, parsed.batch_no, parsed.index)


def counter_ahead(work: DriverTransaction, *, key_id: str | None, at: datetime) -> None:
    """Send the read of `counter_of(…, at=at)` ahead, by the terminal's API key (its terminal
    is not known before the key is read)."""
    if key_id is not None:
        since = at - timedelta(minutes=1)
        work.ahead(sql.AT_WORK_OF_KEY, key_id=key_id, since=since)


def locate_ahead(work: DriverTransaction, *, text: str, keys: Keys) -> None:
    """Send the lookups of `locate` ahead (`DriverTransaction.ahead`): a single code's row
    and its offer's, for a code that verifies offline."""
    try:
        parsed = codec.parse(text, keys.code)
    except codec.InvalidCode:
        return
    if parsed.kind == "single":
        digest = keys.digest(parsed.serial)
        work.ahead(sql.CODE_BY_DIGEST, digest=digest)
        work.ahead(sql.OFFER_OF_CODE, digest=digest)


def _single(tx: DriverTransaction, merchant_id: str, digest: bytes) -> Located:
    code = tx.one_or_none(sql.CODE_BY_DIGEST, digest=digest)
    if code is None:
        raise Refused(CodeRejected(), "well-formed code that was never issued")
    if code.merchant_id != merchant_id:
        raise Refused(CodeRejected(), "code of another merchant")
    if code.state is not CodeState.ACTIVE:
        raise Refused(CodeRejected(), f"code is {code.state.value}")
    return Located(offer=tx.one(sql.OFFER_OF_CODE, digest=digest), code=code)


def _of_batch(tx: DriverTransaction, merchant_id: str, batch_no: int, index: int) -> Located:
    batch = tx.one_or_none(sql.BATCH_BY_NO, batch_no=batch_no)
    if batch is None:
        raise Refused(CodeRejected(), "batch code of an unknown batch")
    if batch.merchant_id != merchant_id:
        raise Refused(CodeRejected(), "batch code of another merchant")
    if index >= batch.count:
        raise Refused(CodeRejected(), "batch code beyond the issued count")
    if tx.scalar(sql.BATCH_CODE_USED, batch_id=batch.id, index=index) is not None:
        raise Refused(CodeRejected(), "batch code already used")
    offer = tx.one(sql.OFFER_BY_ID, offer_id=batch.offer_id)
    return Located(offer=offer, batch=batch, index=index)


def is_new_customer(work: Work, merchant_id: str, consumer_id: str | None) -> bool:
    """New to this merchant: never redeemed anything here."""
    if consumer_id is None:
        return False
    earlier = driver(work).scalar(
        sql.EARLIER_REDEMPTION, merchant_id=merchant_id, consumer_id=consumer_id
    )
    return earlier is None


def redeemed_by(work: Work, offer: Any, consumer_id: str | None) -> int:
    """How often this customer has redeemed this offer (undone redemptions not counted)."""
    if consumer_id is None:
        return 0
    return driver(work).scalar(
        sql.REDEEMED_BY, consumer_id=consumer_id, merchant_id=offer.merchant_id, offer_id=offer.id
    )


def record_attempt(
    work: Work,
    *,
    counter: Counter,
    accepted: bool,
    reason: str,
    redemption_id: str | None = None,
) -> None:
    """One line of the merchant's own log of attempts, with the precise reason."""
    driver(work).send(
        sql.INSERT_ATTEMPT,
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
