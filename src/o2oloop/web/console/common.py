"""What console pages share: the viewer's merchant and its stores, and running a form's use
case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from o2oloop.db import Database
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Merchant, Store
from o2oloop.web.forms import attempt, attempt_owned
from o2oloop.web.framework import Viewer


def db(request: Request) -> Database:
    return request.app.state.db


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A read session whose objects stay usable after it ends (for the template)."""
    with db(request).reading() as session:
        try:
            yield session
        finally:
            session.expunge_all()


def merchant(session: Session, viewer: Viewer) -> Merchant:
    return merchants.get_merchant(
        session, principal=viewer.principal, merchant_id=viewer.merchant_id
    )


def stores(session: Session, viewer: Viewer) -> list[Store]:
    found, _ = merchants.list_stores(
        session, principal=viewer.principal, merchant_id=viewer.merchant_id, cursor=None, limit=200
    )
    return list(found)


def act(
    request: Request,
    viewer: Viewer,
    use_case: Callable[..., Any],
    /,
    *,
    owned: bool = False,
    **arguments: Any,
) -> Any:
    """The viewer's use case in its own write transaction, for the merchant they act for.

    A refusal rolls it back and becomes `FormInvalid` for the form to show; with `owned`,
    another merchant's (or no) row stays a 404 page instead of a message.
    """

    def work() -> Any:
        with db(request).transaction() as session:
            return use_case(
                session, principal=viewer.principal, merchant_id=viewer.merchant_id, **arguments
            )

    return (attempt_owned if owned else attempt)(work)
