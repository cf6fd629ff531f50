"""Run the payment events' handlers now, for entry points that cannot wait for the worker.

`o2oloop payments deliver`, the demo city (which moves simulated time faster than a worker
would follow) and the tests take the sandbox provider through its whole round at once: ask
the provider for what was committed, let it complete and call back, and run the other
domains' reactions. Each (event, handler) pair is written to `jobs` under the key the
worker's fan-out uses (`<event id>/<handler>`), done, in the handler's own transaction: a
worker running at the same time finds the key and leaves the pair alone, so a reaction
happens once, whoever runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import Database, new_id
from o2oloop.events import Event, from_json
from o2oloop.jobs.models import Job, JobState, OutboxEntry
from o2oloop.payments import provider as providers
from o2oloop.payments import service as payments
from o2oloop.payments.events import (
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
    PayoutFinished,
    PayoutRequested,
    RefundRequested,
)
from o2oloop.prepared import dialect_insert

PAYMENT_EVENTS: tuple[type[Event], ...] = (
    PaymentRequested,
    RefundRequested,
    PayoutRequested,
    PaymentSucceeded,
    PaymentFailed,
    PayoutFinished,
)


class Handler(Protocol):
    name: str
    needs_session: bool

    def __call__(self, session: Session | None, event: Event) -> Any: ...


# Ids per statement: SQLite binds each id of an IN list as its own variable.
CHUNK = 500

HandlersFor = Callable[[str], Sequence[Handler]]


def _claim(session: Session, dialect: str, event_id: str, handler: str) -> bool:
    """Take (event, handler) as done; False when someone has it already (done or queued)."""
    now = clock.now()
    row = {
        "id": new_id("job"),
        "key": f"{event_id}/{handler}",
        "handler": handler,
        "event_id": event_id,
        "state": JobState.DONE.value,
        "attempts": 1,
        "max_attempts": 1,
        "run_after": now,
        "created_at": now,
        "updated_at": now,
        "finished_at": now,
    }
    insert = dialect_insert(dialect)(Job.__table__).values(row)
    inserted = session.execute(
        insert.on_conflict_do_nothing(index_elements=["key"]).returning(Job.__table__.c.id)
    ).first()
    return inserted is not None


def run_now(
    db: Database, handlers_for: HandlersFor, *, types: Iterable[type[Event]] = PAYMENT_EVENTS
) -> int:
    """Run every handler of the committed, not yet fanned out events of `types`; how many."""
    names = [event_type.name for event_type in types]
    with db.reading() as session:
        entries = session.execute(
            select(OutboxEntry.event_id, OutboxEntry.type, OutboxEntry.payload)
            .where(OutboxEntry.dispatched_at.is_(None), OutboxEntry.type.in_(names))
            .order_by(OutboxEntry.event_id)
        ).all()
        ids = [entry.event_id for entry in entries]
        taken = {
            key
            for start in range(0, len(ids), CHUNK)
            for key in session.scalars(
                select(Job.key).where(Job.event_id.in_(ids[start : start + CHUNK]))
            )
        }
    ran = 0
    finished: list[str] = []
    try:
        for event_id, name, payload in entries:
            ran += _run_entry(db, handlers_for, event_id, name, payload, taken)
            finished.append(event_id)
    finally:
        _mark_dispatched(db, finished)
    return ran


def _run_entry(
    db: Database,
    handlers_for: HandlersFor,
    event_id: str,
    name: str,
    payload: Any,
    taken: set[str],
) -> int:
    """Run the handlers of one entry nobody has taken yet; how many ran."""
    handlers = [h for h in handlers_for(name) if f"{event_id}/{h.name}" not in taken]
    if not handlers:
        return 0
    event = from_json(name, payload)
    ran = 0
    for handler in handlers:
        if handler.needs_session:
            with db.transaction() as session:
                if not _claim(session, db.dialect, event_id, handler.name):
                    continue
                handler(session, event)  # its effect and its mark commit together
        else:
            # At least once: marked only after it returned, so a failure (or a crash
            # right here) leaves it to the next run, and the provider dedupes.
            handler(None, event)
            with db.transaction() as session:
                _claim(session, db.dialect, event_id, handler.name)
        ran += 1
    return ran


def _mark_dispatched(db: Database, event_ids: list[str]) -> None:
    """Entries whose every handler is done or queued are fanned out: the worker's fan-out
    and the next round here skip them, so a round reads only what is new."""
    if not event_ids:
        return
    with db.transaction() as session:
        for start in range(0, len(event_ids), CHUNK):
            chunk = event_ids[start : start + CHUNK]
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.event_id.in_(chunk), OutboxEntry.dispatched_at.is_(None))
                .values(dispatched_at=clock.now())
            )


def settle_sandbox(
    db: Database, handlers_for: HandlersFor, *, secret: str
) -> providers.DeliveryReport:
    """One round of the sandbox: ask it, let it complete and call back, react to that."""
    run_now(db, handlers_for)
    report = providers.deliver_pending_events(
        db, send=payments.local_sender(db, secret), secret=secret
    )
    run_now(db, handlers_for)
    return report
