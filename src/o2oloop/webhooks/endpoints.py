"""Use cases for a merchant's webhook endpoints: register, change, rotate the secret, list.

Every function is scoped by tenant: another merchant's endpoint is as absent as a missing
one. Only a merchant admin (or the platform) manages endpoints: they carry signing secrets.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, get_owned, require_merchant_admin
from o2oloop.config import Settings
from o2oloop.db import new_id
from o2oloop.errors import InvalidInput, NotFound
from o2oloop.merchants.models import Merchant
from o2oloop.pagination import paginate
from o2oloop.webhooks import schemas, signing_secrets
from o2oloop.webhooks.models import WebhookEndpoint
from o2oloop.webhooks.outbound import address_allowed, literal_address


def check_url(url: str, *, settings: Settings) -> str:
    """An endpoint URL webhooks may be sent to, or a 422 that says what is wrong with it.

    https is required outside development. Host names are checked again, on every attempt,
    against the addresses they resolve to (`outbound`).
    """
    url = url.strip()
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidInput("url may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as error:
        raise InvalidInput(f"url is not a valid URL: {error}") from None
    allowed = ("https", "http") if settings.env == "development" else ("https",)
    if parts.scheme not in allowed:
        needed = "https or http (development only)" if len(allowed) == 2 else "https"
        raise InvalidInput(
            f"url must use {needed}: webhooks carry merchant data (got {parts.scheme or 'none'!r})"
        )
    host = parts.hostname
    if not host:
        raise InvalidInput("url has no host")
    if parts.username or parts.password:
        raise InvalidInput("url may not carry a user name or password; the signature authenticates")
    if port == 0:
        raise InvalidInput("url has port 0")
    if not settings.webhooks_allow_private:
        literal = literal_address(host)
        if (
            host == "localhost"
            or host.endswith(".localhost")
            or (literal is not None and not address_allowed(literal))
        ):
            raise InvalidInput(
                f"url points at {host}, a private, loopback or link-local address; "
                "webhooks go to public addresses only"
            )
    return parts._replace(fragment="").geturl()


def create_endpoint(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    data: schemas.WebhookEndpointCreate,
    settings: Settings,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned in plain text this once)."""
    require_merchant_admin(principal, merchant_id)
    if session.get(Merchant, merchant_id) is None:  # a platform admin may name any id
        raise NotFound("no merchant with this id")
    now = clock.now()
    secret = signing_secrets.new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        merchant_id=merchant_id,
        url=check_url(data.url, settings=settings),
        description=data.description,
        event_types=data.event_types,
        enabled=data.enabled,
        disabled_reason=None,
        secret_encrypted=signing_secrets.encrypt(secret, secret_key=settings.secret_key),
        previous_secret_encrypted=None,
        previous_secret_expires_at=None,
        failing_since=None,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get_endpoint(
    session: Session, *, principal: Principal, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    require_merchant_admin(principal, merchant_id)
    return get_owned(
        session, WebhookEndpoint, endpoint_id, merchant_id=merchant_id, what="webhook endpoint"
    )


def list_endpoints(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpoint], str | None]:
    require_merchant_admin(principal, merchant_id)
    query = select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id)
    return paginate(session, query, WebhookEndpoint.id, cursor=cursor, limit=limit)


def update_endpoint(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    endpoint_id: str,
    data: schemas.WebhookEndpointUpdate,
    settings: Settings,
) -> WebhookEndpoint:
    endpoint = get_endpoint(
        session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id
    )
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:
        changes["url"] = check_url(changes["url"], settings=settings)
    if changes.get("enabled") and not endpoint.enabled:
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        endpoint.consecutive_failures = 0
    if changes.get("enabled") is False:
        endpoint.disabled_reason = "disabled by the merchant"
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.updated_at = clock.now()
    session.flush()
    return endpoint


def rotate_secret(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    endpoint_id: str,
    data: schemas.SecretRotation,
    settings: Settings,
) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the current one keeps signing beside it for the
    overlap, so receivers can switch without losing a delivery. A rotation during an overlap
    drops the oldest secret: at most two ever sign."""
    endpoint = get_endpoint(
        session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id
    )
    now = clock.now()
    secret = signing_secrets.new_secret()
    if data.overlap_hours > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + timedelta(hours=data.overlap_hours)
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = signing_secrets.encrypt(secret, secret_key=settings.secret_key)
    endpoint.updated_at = now
    session.flush()
    return endpoint, secret


def signing_secrets_of(endpoint: WebhookEndpoint, *, secret_key: str) -> list[str]:
    """The secrets that sign a delivery to this endpoint now: the current one first, then the
    previous one while its overlap lasts."""
    live = [signing_secrets.decrypt(endpoint.secret_encrypted, secret_key=secret_key)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and clock.now() < expires:
        live.append(
            signing_secrets.decrypt(endpoint.previous_secret_encrypted, secret_key=secret_key)
        )
    return live
