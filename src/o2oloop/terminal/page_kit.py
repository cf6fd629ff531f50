"""What the terminal's pages share: the paired device, forms rendered once, amounts."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from o2oloop.auth import service as keys
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import Unauthorized
from o2oloop.idempotency import service as idempotency
from o2oloop.money import MINOR_UNITS, Money
from o2oloop.prepared import driver
from o2oloop.terminal import desk
from o2oloop.web import framework

DEVICE_COOKIE = "o2o_terminal"
DEVICE_DAYS = 400  # browsers cap a cookie's life at about this
MAX_PHOTO_BYTES = 8 * 1024 * 1024


class NotPaired(Exception):
    """No live terminal key on this device: the page sends it to pairing."""


def db(request: Request) -> Database:
    return request.app.state.db


def settings(request: Request) -> Any:
    return request.app.state.settings


def device(request: Request) -> Principal:
    token = request.cookies.get(DEVICE_COOKIE)
    if not token:
        raise NotPaired()
    try:
        with db(request).reading() as session:
            return keys.authenticate(session, token)
    except Unauthorized:
        raise NotPaired() from None


def form_key() -> str:
    return secrets.token_urlsafe(18)


def parse_amount(text: str | None, currency: str, *, required: bool = False) -> int | None:
    """What the cashier typed ("128", "128.5", "1,280.00") -> minor units; ValueError if not."""
    cleaned = (text or "").strip().replace(",", "").replace("¥", "").replace("￥", "")
    if not cleaned:
        if required:
            raise ValueError("enter the amount")
        return None
    exponent = MINOR_UNITS[currency]
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("enter an amount such as 128.00") from None
    minor = value * (10**exponent)
    if value < 0 or minor != minor.to_integral_value() or minor > 10**11:
        raise ValueError("enter an amount such as 128.00")
    return int(minor)


def plain_amount(money: Money | None) -> str:
    """An amount as the cashier would type it ("80.00"), to fill in a form."""
    if money is None or not money.amount:
        return ""
    exponent = MINOR_UNITS[money.currency]
    return f"{Decimal(money.amount).scaleb(-exponent):.{exponent}f}"


def page(
    request: Request,
    template: str,
    counter: desk.Counter | None,
    context: dict[str, Any],
    status: int = 200,
) -> HTMLResponse:
    timezone = counter.store.timezone if counter else "UTC"
    values = {"counter": counter, "form_key": form_key, "DEVICE_DAYS": DEVICE_DAYS, **context}
    return framework.render(
        request, f"terminal/{template}", values, status=status, timezone=timezone
    )


def once(
    request: Request, principal: Principal, form: dict[str, str], make: Callable[[], Response]
) -> Response:
    """The first answer to this rendered form, however often it is sent.

    A retry after a lost answer (a slow connection, a second press) finds the stored page
    and runs nothing. Two presses in flight at once both reach the use case, which is
    exactly-once where it matters (a code is used once); the later one gets the first one's
    page all the same. (The page's script also sends a form only once.)
    """
    key = form.get("form_key", "")
    if not key or len(key) > 64:
        return make()
    config, database = settings(request), db(request)
    fields = "&".join(f"{k}={v}" for k, v in sorted(form.items()) if k != "form_key")
    keyed = idempotency.KeyedRequest(
        scope=f"terminal-page:{principal.terminal_id}",
        key=key,
        fingerprint=hashlib.sha256(f"{request.url.path}?{fields}".encode()).hexdigest(),
        ttl=timedelta(hours=config.idempotency_ttl_hours),
    )

    def stored() -> Response | None:
        with database.reading() as session:
            replay = keyed.lookup(driver(session))
        return None if replay is None else HTMLResponse(replay.body, status_code=replay.status_code)

    earlier = stored()
    if earlier is not None:
        return earlier
    response = make()
    if isinstance(response, HTMLResponse) and idempotency.kept(response.status_code):
        with database.transaction() as session:
            first = keyed.store(
                driver(session), status=response.status_code, content_type="text/html",
                body=bytes(response.body),
            )  # fmt: skip
        if not first:
            return stored() or response
    return response
