"""One redemption request at a till, end to end: the application service its route calls.

Check while only reading, then store in a short write; a refusal is logged on its own.
With an Idempotency-Key the answer is stored in the very transaction that stores the
redemption (or logs the refusal), and a retry whose answer is stored gets it from the
check's reading, so the counter's fast path pays one more indexed read and one insert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from o2oloop import clock
from o2oloop.auth.principal import Principal
from o2oloop.auth.service import authenticate, authenticate_ahead, key_id_of
from o2oloop.codes import schemas
from o2oloop.codes.counter import counter_ahead, locate_ahead, record_refusal
from o2oloop.codes.keys import Keys
from o2oloop.codes.redemption import (
    CheckedRedemption,
    Redeemed,
    check_redemption,
    complete_redemption,
)
from o2oloop.codes.refusals import Refused
from o2oloop.db import Database
from o2oloop.errors import PROBLEM_MEDIA_TYPE
from o2oloop.idempotency import service as idempotency
from o2oloop.prepared import DriverTransaction

JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    """What the till is told, as stored for a retry with the same key."""

    status: int
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Attempt:
    """One request at the till: who presents which code for which bill."""

    token: str | None
    code: str
    bill_amount: int | None
    keys: Keys
    rate_per_minute: int
    instance: str  # the request's path, for problem details


async def redeem_at_till(db: Database, attempt: Attempt) -> Answer:
    """201 with what the cashier gives, or the one problem a refusal answers with."""
    keyed = idempotency.current()
    caller: list[Principal] = []

    def check(transaction: DriverTransaction) -> CheckedRedemption:
        # What the checks read goes out at once (one statement on PostgreSQL).
        now = clock.now()
        authenticate_ahead(transaction, attempt.token)
        counter_ahead(transaction, key_id=key_id_of(attempt.token), at=now)
        if keyed is not None:
            keyed.lookup_ahead(transaction)
        locate_ahead(transaction, text=attempt.code, keys=attempt.keys)
        caller.append(authenticate(transaction, attempt.token))
        if keyed is not None:
            keyed.replay_if_answered(transaction)
        return check_redemption(
            transaction,
            principal=caller[0],
            code=attempt.code,
            bill_amount=attempt.bill_amount,
            keys=attempt.keys,
            rate_per_minute=attempt.rate_per_minute,
            at=now,
        )

    def complete(transaction: DriverTransaction, checked: CheckedRedemption) -> Answer:
        redeemed = complete_redemption(transaction, checked)
        answer = Answer(201, JSON, result(redeemed).model_dump_json().encode())
        _keep(keyed, transaction, answer)
        return answer

    try:
        answer = await db.run_checked(
            check,
            complete,
            orm=lambda checked: checked.moves_money,
            # The writes as one statement on PostgreSQL, unless the key's row must be replaced.
            single=lambda checked: checked.writes_at_once and (keyed is None or keyed.fresh),
        )
    except Refused as refused:
        answer = await _refuse(db, caller[0], refused, attempt.instance, keyed)
    if keyed is not None:
        keyed.stored = True
    return answer


async def _refuse(
    db: Database,
    principal: Principal,
    refused: Refused,
    instance: str,
    keyed: idempotency.KeyedRequest | None,
) -> Answer:
    """Log the precise reason in the merchant's log; the till gets the public problem."""
    problem = refused.public.to_problem(instance)
    answer = Answer(refused.public.status, PROBLEM_MEDIA_TYPE, json.dumps(problem).encode())

    def refuse(transaction: DriverTransaction) -> None:
        record_refusal(transaction, principal=principal, reason=refused.reason)
        if idempotency.kept(answer.status):
            _keep(keyed, transaction, answer)

    await db.run_transaction(refuse)
    return answer


def _keep(
    keyed: idempotency.KeyedRequest | None, transaction: DriverTransaction, answer: Answer
) -> None:
    if keyed is not None:
        keyed.store_in(
            transaction, status=answer.status, content_type=answer.media_type, body=answer.body
        )


def result(redeemed: Redeemed) -> schemas.RedemptionResult:
    """The redemption as the till shows it: what to give and what is still due."""
    return schemas.RedemptionResult(
        redemption=schemas.RedemptionRead.model_validate(redeemed.redemption),
        offer_title=redeemed.offer_title,
        offer_kind=redeemed.offer_kind,
        benefit=redeemed.benefit,
        discount_amount=redeemed.redemption.discount_amount,
        amount_due=redeemed.amount_due,
        currency=redeemed.currency,
    )
