"""Claim, complete, release and expire idempotency records.

The claim is an INSERT against a unique (scope, key): of two concurrent first attempts the
database lets exactly one in; the other sees the running record and gets a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from o2oloop import clock
from o2oloop.db import Database
from o2oloop.errors import IdempotencyInProgress, IdempotencyMismatch
from o2oloop.idempotency.models import IdempotencyRecord


@dataclass(frozen=True)
class Replay:
    status_code: int
    content_type: str | None
    body: bytes


def claim(db: Database, *, scope: str, key: str, fingerprint: str, ttl: timedelta) -> Replay | int:
    """The id of a new running record, or the stored response to replay."""
    for _ in range(3):
        now = clock.now()
        try:
            with db.transaction() as session:
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.scope == scope,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at < now - ttl,
                    )
                )
                record = IdempotencyRecord(
                    scope=scope, key=key, fingerprint=fingerprint, state="running", created_at=now
                )
                session.add(record)
                session.flush()
                return record.id
        except IntegrityError:
            pass
        with db.transaction() as session:
            existing = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            )
            if existing is None:
                continue  # released between our insert and this read: claim again
            if existing.fingerprint != fingerprint:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was first used with a different method, path or body; "
                    "use a new key for a different request"
                )
            if existing.state != "done":
                raise IdempotencyInProgress(
                    "the first request with this Idempotency-Key is still running; retry later"
                )
            return Replay(existing.status_code or 200, existing.content_type, existing.body or b"")
    raise IdempotencyInProgress("could not claim this Idempotency-Key; retry later")


def complete(
    db: Database, *, record_id: int, status_code: int, content_type: str | None, body: bytes
) -> None:
    with db.transaction() as session:
        record = session.get(IdempotencyRecord, record_id)
        if record is not None:
            record.state = "done"
            record.status_code = status_code
            record.content_type = content_type
            record.body = body
            record.completed_at = clock.now()


def release(db: Database, *, record_id: int) -> None:
    """Forget a claim whose request did not finish, so a retry may run it."""
    with db.transaction() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def purge_expired(db: Database, *, ttl: timedelta) -> int:
    with db.transaction() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < clock.now() - ttl)
        )
        return result.rowcount
