"""Domain events and the outbox they are written to, in the transaction of their change.

A use case records what happened (`record(session, CodeRedeemed(...))`); the event is
written to the `outbox` table in the same transaction as the change, so an event exists if
and only if its change committed. The worker runs its handlers after the commit. This module
is plumbing: it imports no domain; each domain defines its events in `<domain>/events.py`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Union

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import new_id
from o2oloop.jobs.models import OutboxEntry
from o2oloop.prepared import DriverTransaction, Prepared

_TYPES: dict[str, type[Event]] = {}
E = TypeVar("E", bound="Event")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """An immutable fact of the loop, named in the product's language.

    Subclasses are frozen, kw_only dataclasses of JSON-able fields (str, int, bool, None,
    datetime, lists and dicts of those) and give their wire name as `name`, e.g.
    `"code.redeemed"`: the outbox, the worker and merchant webhooks know events by it.
    A field named `merchant_id` also goes to the outbox's own column, so one merchant's
    events can be found without reading payloads. An event whose reaction must be part of
    its change (`reacts_in_transaction`) has it run by `record`, in the same transaction.
    """

    name: ClassVar[str]
    reacts_in_transaction: ClassVar[bool] = False
    event_id: str = dataclasses.field(default_factory=lambda: new_id("evt"))
    occurred_at: datetime = dataclasses.field(default_factory=clock.now)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            raise TypeError(f"{cls.__name__} needs a wire name: name = 'domain.happened'")
        known = _TYPES.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"two events are named {name!r}: {known} and {cls}")
        _TYPES[name] = cls

    def to_json(self) -> str:
        # Fields are JSON-able values, never nested dataclasses, so a shallow read is enough
        # (asdict's deep copy was most of the cost of a campaign send's 100,000 events).
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps(_plain(fields), separators=(",", ":"), sort_keys=True)

    @property
    def merchant(self) -> str | None:
        value = getattr(self, "merchant_id", None)
        return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.as_utc(value).isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _is_datetime(hint: Any) -> bool:
    if hint is datetime:
        return True
    if typing.get_origin(hint) in (Union, types.UnionType):
        return datetime in typing.get_args(hint)
    return False


def event_type(name: str) -> type[Event]:
    """The event class of a wire name; KeyError for a name no loaded module defines."""
    return _TYPES[name]


def from_json(name: str, payload: str) -> Event:
    """The event a `to_json` wrote, by its registered wire name."""
    cls = event_type(name)
    fields = json.loads(payload)
    hints = typing.get_type_hints(cls)
    for key, value in fields.items():
        if isinstance(value, str) and _is_datetime(hints.get(key)):
            fields[key] = datetime.fromisoformat(value)
    return cls(**fields)


_outbox = OutboxEntry.__table__
_INSERT_OUTBOX = Prepared(
    insert(_outbox).values(
        event_id=bindparam("event_id"),
        type=bindparam("type"),
        merchant_id=bindparam("merchant_id"),
        payload=bindparam("payload"),
        occurred_at=bindparam("occurred_at"),
    )
)


def outbox_row(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.name,
        "merchant_id": event.merchant,
        "payload": event.to_json(),
        "occurred_at": event.occurred_at,
        "dispatched_at": None,
    }


def record(work: Session | DriverTransaction, event: Event) -> None:
    """Record `event` in the unit of work: it is written to the outbox by the same commit.

    On an ORM session the row joins the session (a rollback discards it with the change).
    On a lean `DriverTransaction` (the counter) the insert waits until just before the
    commit and goes with every other event of the transaction in one `executemany`; an
    error inside a savepoint drops the events recorded inside it.
    """
    session = work if isinstance(work, Session) else work.session_or_none
    if session is not None:
        session.add(OutboxEntry(**outbox_row(event)))
        _react(session, event)
        return
    assert isinstance(work, DriverTransaction)
    if event.reacts_in_transaction:
        raise TypeError(f"{event.name} has reactions in its transaction: record it on a Session")
    row = outbox_row(event)
    del row["dispatched_at"]
    work.defer(_INSERT_OUTBOX, row)


def record_all(session: Session, recorded: list[Event]) -> None:
    """Record many events at once (one multi-row insert), in the session's transaction."""
    if recorded:
        session.execute(insert(_outbox), [outbox_row(event) for event in recorded])
    for event in recorded:
        _react(session, event)


def _react(session: Session, event: Event) -> None:
    """Run the reactions bootstrap installed on the session's database for this event."""
    if not event.reacts_in_transaction:
        return
    reactions = session.info.get("reactions", {}).get(event.name)
    if not reactions:
        raise LookupError(
            f"nothing reacts to {event.name} in this database's transactions: "
            "wire it with bootstrap(settings, db=db)"
        )
    for react in reactions:
        react(session, event)
