"""Consumer use cases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.customers.models import Consumer
from o2oloop.db import new_id
from o2oloop.errors import Forbidden, NotFound


def sign_up(session: Session, *, display_name: str = "") -> tuple[Consumer, str]:
    """A consumer joins the platform and gets a consumer key; no personal data is required."""
    consumer = Consumer(id=new_id("csm"), display_name=display_name, created_at=clock.now())
    session.add(consumer)
    session.flush()
    _, token = keys.issue_key(session, role=Role.CONSUMER, consumer_id=consumer.id)
    return consumer, token


def get_self(session: Session, *, principal: Principal) -> Consumer:
    if principal.role is not Role.CONSUMER or principal.consumer_id is None:
        raise Forbidden("this needs a consumer key")
    consumer = session.get(Consumer, principal.consumer_id)
    if consumer is None:
        raise NotFound("consumer not found")
    return consumer
