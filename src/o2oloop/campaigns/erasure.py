"""A consumer's erasure reaches the copies of their campaign messages outside notify: the
`campaign.message_sent` events in the outbox and the merchant webhook deliveries made of
them carry the rendered text (their name) and their personal code.

Run after commit by the worker as a handler of `ConsumerErased` (wired in bootstrap), after
or before notify empties the messages themselves: the events are found through the
consumer's webhook messages, whose ids name them (`message_event_id`), never by reading
every payload. Erasing twice changes nothing.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import events
from o2oloop.campaigns.events import CampaignMessageSent, message_event_id
from o2oloop.customers.events import ConsumerErased
from o2oloop.jobs.models import OutboxEntry
from o2oloop.notify.models import Message
from o2oloop.webhooks import deliveries

# What a message event keeps once its consumer is erased: ids and dates, no text, no code.
ERASED = {"subject": "", "body": "", "code": "", "member_id": None}


def erase_message_events(session: Session, consumer_id: str) -> int:
    """Empty the text and code of the consumer's `campaign.message_sent` events and of the
    webhook deliveries queued from them; returns how many events were emptied."""
    message_ids = session.scalars(
        select(Message.id).where(Message.consumer_id == consumer_id, Message.channel == "webhook")
    ).all()
    event_ids = [message_event_id(m) for m in message_ids]
    if not event_ids:
        return 0
    rows = session.execute(
        select(OutboxEntry.event_id, OutboxEntry.payload).where(
            OutboxEntry.event_id.in_(event_ids),
            OutboxEntry.type == CampaignMessageSent.name,
        )
    ).all()
    for event_id, payload in rows:
        event = events.from_json(CampaignMessageSent.name, payload)
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.event_id == event_id)
            .values(payload=dataclasses.replace(event, **ERASED).to_json())
            .execution_options(synchronize_session=False)
        )
    deliveries.redact(session, event_ids=event_ids, data=ERASED)
    return len(rows)


def on_consumer_erased(session: Session, event: ConsumerErased) -> None:
    erase_message_events(session, event.consumer_id)
