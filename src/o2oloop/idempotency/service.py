"""Idempotency-Key records, written in the same transaction as the change they answer for.

There is no claim of its own: a request's key row is inserted in the transaction that makes
the request's change, and holds its answer when that transaction commits. So a key row
exists exactly when the change committed, and always with its answer; a process that dies
mid-request leaves nothing behind (its transaction rolls back, and the key with it), and a
retry runs afresh. Two executions with one key meet at the row's unique (scope, key): on
PostgreSQL the second insert waits for the first transaction and then finds its row; on
SQLite writers take turns anyway. Whoever finds the key taken drops its own work (its
transaction rolls back) and answers with the stored answer instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import ANSWER_BOUND, Database, HeldTransaction
from o2oloop.errors import IdempotencyMismatch
from o2oloop.idempotency.models import IdempotencyRecord
from o2oloop.prepared import DriverTransaction, Prepared, driver

_records = IdempotencyRecord.__table__
# How long a claim waits on PostgreSQL for another execution holding the same key.
CLAIM_WAIT_MS = 2000
_LOCK_NOT_AVAILABLE = "55P03"


def _new_row(insert_into: Any) -> Any:
    return insert_into(_records).values(
        scope=bindparam("scope"),
        key=bindparam("key"),
        fingerprint=bindparam("fingerprint"),
        state=bindparam("state"),
        status_code=bindparam("status_code"),
        content_type=bindparam("content_type"),
        body=bindparam("body"),
        created_at=bindparam("created_at"),
        completed_at=bindparam("completed_at"),
    )


def _upsert(insert_into: Any) -> Any:
    """Insert the key's row; replace it only if it has expired (or is a claim left by an
    older version, which stored claims of their own): the id, or no row if the key is live."""
    statement = _new_row(insert_into)
    replaced = ("fingerprint", "state", "status_code", "content_type", "body", "created_at")
    return statement.on_conflict_do_update(
        index_elements=[_records.c.scope, _records.c.key],
        set_={name: statement.excluded[name] for name in (*replaced, "completed_at")},
        where=(_records.c.created_at < bindparam("expired_before")) | (_records.c.state != "done"),
    ).returning(_records.c.id)


_CLAIM = Prepared(_upsert)
_INSERT_NEW = Prepared(_new_row(insert))  # for a key that had no row when the request began
_LOOKUP = Prepared(
    select(
        _records.c.fingerprint,
        _records.c.state,
        _records.c.status_code,
        _records.c.content_type,
        _records.c.body,
        _records.c.created_at,
    ).where(_records.c.scope == bindparam("scope"), _records.c.key == bindparam("key"))
)
_ANSWER = Prepared(
    update(_records)
    .where(_records.c.id == bindparam("record_id"))
    .values(
        state="done",
        status_code=bindparam("answer_status"),
        content_type=bindparam("answer_type"),
        body=bindparam("answer_body"),
        completed_at=bindparam("answered_at"),
    )
)


def kept(status: int) -> bool:
    """Whether an answer is the answer to the request itself (and is stored for retries):
    not a server failure, a missing credential or a rate limit, which a retry runs afresh."""
    return status < 500 and status not in (401, 429)


def current() -> KeyedRequest | None:
    """The request with an Idempotency-Key being served here, if it has one."""
    bound = ANSWER_BOUND.get()
    return bound if isinstance(bound, KeyedRequest) else None


@dataclass(frozen=True)
class Replay:
    status_code: int
    content_type: str | None
    body: bytes


class AnsweredElsewhere(Exception):
    """Raised inside a request whose key another execution has answered (or is answering):
    unwinds the request's own work; the middleware answers with the stored answer."""


@dataclass(eq=False)
class KeyedRequest:
    """One request with an Idempotency-Key, as the middleware and the route see it."""

    scope: str  # sha256 of the credential: one caller cannot replay another's answers
    key: str
    fingerprint: str  # sha256 of method, path, query and body
    ttl: timedelta
    held: HeldTransaction | None = None  # the change's transaction, awaiting the answer
    record_id: int | None = None  # the key's row in `held`
    replay: Replay | None = None  # the answer stored earlier, found by the route
    taken: bool = False  # another execution holds the key
    fresh: bool = False  # the route's reading found no row of the key, not even an expired one
    stored: bool = False  # the route stored its answer with its change itself
    answered: bool = False  # the app has given its answer (`db.AnswerBound`)

    # ---- the route's transaction ----

    def begin(self, session: Session) -> None:
        """Claim the key first thing in the change's own transaction (`db.AnswerBound`):
        the answer is filled in at the end, before the one commit.

        On PostgreSQL the claim waits for an execution still running with the key (its
        uncommitted row) at most `CLAIM_WAIT`; then the retry is answered as one whose key
        is taken (the first's answer if it comes soon, else 409 with Retry-After), instead
        of waiting as long as the first runs."""
        if session.get_bind().dialect.name != "postgresql":
            self.record_id = self._insert(driver(session), state="running")
            return
        session.execute(text(f"SET LOCAL lock_timeout = '{CLAIM_WAIT_MS}ms'"))
        try:
            self.record_id = self._insert(driver(session), state="running")
        except Exception as error:
            cause = error.orig if isinstance(error, DBAPIError) else error
            if getattr(cause, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            self.taken = True
            raise AnsweredElsewhere from None
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))

    def store_in(
        self, work: Session | DriverTransaction, *, status: int, content_type: str, body: bytes
    ) -> None:
        """Store the answer in the change's own transaction (a route that answers itself).

        A key the route's reading found no row of is inserted as new: if a concurrent
        execution inserts it first, the unique (scope, key) fails this change, whatever the
        change is written with (`DriverTransaction.insert_new`, one statement included).
        """
        answer = {"status_code": status, "content_type": content_type, "body": body}
        if not self.fresh:
            self._insert(driver(work), state="done", **answer)
            return
        now = clock.now()
        driver(work).insert_new(
            _INSERT_NEW,
            self._taken,
            scope=self.scope,
            key=self.key,
            fingerprint=self.fingerprint,
            state="done",
            created_at=now,
            completed_at=now,
            **answer,
        )

    def _taken(self) -> AnsweredElsewhere:
        self.taken = True
        return AnsweredElsewhere()

    def lookup_ahead(self, tx: DriverTransaction) -> None:
        """Send the key's lookup ahead of `replay_if_answered` (`DriverTransaction.ahead`)."""
        tx.ahead(_LOOKUP, scope=self.scope, key=self.key)

    def replay_if_answered(self, work: Session | DriverTransaction) -> None:
        """In the route's reading: a retry whose answer is stored gets it, and runs nothing."""
        found = self.lookup(driver(work))
        if found is not None:
            self.replay = found
            raise AnsweredElsewhere

    def _insert(self, tx: DriverTransaction, *, state: str, **answer: Any) -> int:
        now = clock.now()
        answer.setdefault("status_code", None)
        answer.setdefault("content_type", None)
        answer.setdefault("body", None)
        record_id = tx.scalar(
            _CLAIM,
            scope=self.scope,
            key=self.key,
            fingerprint=self.fingerprint,
            state=state,
            created_at=now,
            completed_at=now if state == "done" else None,
            expired_before=now - self.ttl,
            **answer,
        )
        if record_id is None:
            raise self._taken()
        return record_id

    # ---- the middleware ----

    def finish(self, *, status: int, content_type: str | None, body: bytes) -> None:
        """Write the answer into the held transaction and commit it with the change."""
        held = self.held
        assert held is not None and self.record_id is not None
        self.held = None
        try:
            driver(held.session).execute(
                _ANSWER,
                record_id=self.record_id,
                answer_status=status,
                answer_type=content_type,
                answer_body=body,
                answered_at=clock.now(),
            )
        except BaseException:
            held.rollback()
            raise
        held.commit()

    def abandon(self) -> None:
        """Roll back the held transaction: the request did not come to an answer."""
        held, self.held = self.held, None
        if held is not None:
            held.rollback()

    def store(
        self, tx: DriverTransaction, *, status: int, content_type: str | None, body: bytes
    ) -> bool:
        """Store an answer that no change of the request's own came with (an error, say):
        True, or False if another execution answered first."""
        try:
            self._insert(tx, state="done", status_code=status, content_type=content_type, body=body)
        except AnsweredElsewhere:
            return False
        return True

    def lookup(self, tx: DriverTransaction) -> Replay | None:
        """The stored answer, None if there is none (or it expired); a different request
        with the same key is refused."""
        row = tx.one_or_none(_LOOKUP, scope=self.scope, key=self.key)
        self.fresh = row is None
        if row is None or row.state != "done" or row.created_at < clock.now() - self.ttl:
            return None
        if row.fingerprint != self.fingerprint:
            raise IdempotencyMismatch(
                "this Idempotency-Key was first used with a different method, path or body; "
                "use a new key for a different request"
            )
        return Replay(row.status_code or 200, row.content_type, row.body or b"")


def purge_expired(db: Database, *, ttl: timedelta) -> int:
    with db.transaction() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < clock.now() - ttl)
        )
        return result.rowcount
