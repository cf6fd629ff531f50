"""Issuing, checking and revoking API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import bindparam, column, select, table, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.models import ApiKey, Role
from o2oloop.auth.principal import Principal
from o2oloop.db import new_id
from o2oloop.errors import NotFound, Unauthorized
from o2oloop.prepared import DriverTransaction, Prepared, driver

# o2o_<key id>_<secret>: the id finds the row, the secret (256 bits) proves possession.
_TOKEN = re.compile(r"^o2o_(key_[0-9a-z]{26})_([A-Za-z0-9_-]{43})$")


# Every request of every caller comes through here: a plain row by a prepared statement.
_KEY_BY_ID = Prepared(select(ApiKey.__table__).where(ApiKey.__table__.c.id == bindparam("key_id")))


# A platform admin's key opens every merchant, so for it a merchant's existence is checked
# by name; the merchants table is the one every key's `merchant_id` already refers to.
_MERCHANTS = table("merchants", column("id"))
_MERCHANT_EXISTS = Prepared(
    select(_MERCHANTS.c.id).where(_MERCHANTS.c.id == bindparam("merchant_id"))
)


def hash_secret(secret: str) -> str:
    # A fast hash is right here: the secret is 256 random bits, not a password to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session,
    *,
    role: Role,
    label: str = "",
    merchant_id: str | None = None,
    store_id: str | None = None,
    staff_id: str | None = None,
    terminal_id: str | None = None,
    consumer_id: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the plain token is returned once and never stored."""
    key_id = new_id("key")
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        secret_hash=hash_secret(secret),
        role=role,
        label=label,
        merchant_id=merchant_id,
        store_id=store_id,
        staff_id=staff_id,
        terminal_id=terminal_id,
        consumer_id=consumer_id,
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    return key, f"o2o_{key_id}_{secret}"


def key_id_of(token: str | None) -> str | None:
    """The id of the key a well-formed token names (not yet checked), else None."""
    match = _TOKEN.match(token or "")
    return match.group(1) if match else None


def authenticate_ahead(work: DriverTransaction, token: str | None) -> None:
    """Send the key's lookup ahead of `authenticate` (`DriverTransaction.ahead`)."""
    key_id = key_id_of(token)
    if key_id is not None:
        work.ahead(_KEY_BY_ID, key_id=key_id)


def well_formed(token: str | None) -> bool:
    """Whether a presented token could be a key at all (no lookup)."""
    return key_id_of(token) is not None


def authenticate(work: Session | DriverTransaction, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer o2o_key_…'")
    match = _TOKEN.match(token)
    if not match:
        raise Unauthorized("the API key is malformed")
    key_id, secret = match.groups()
    key = driver(work).one_or_none(_KEY_BY_ID, key_id=key_id)
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise Unauthorized("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthorized("the API key has been revoked")
    return principal_of(key)


def require_known_merchant(
    work: Session | DriverTransaction, principal: Principal, merchant_id: str
) -> None:
    """404 for a platform admin naming a merchant that does not exist: an empty list (or a
    half-done change) would answer as if it did. A merchant's own key already proves it."""
    if (
        principal.is_platform
        and driver(work).scalar(_MERCHANT_EXISTS, merchant_id=merchant_id) is None
    ):
        raise NotFound("no merchant with this id")


def principal_of(key: Any) -> Principal:
    return Principal(
        key_id=key.id,
        role=key.role,
        merchant_id=key.merchant_id,
        store_id=key.store_id,
        staff_id=key.staff_id,
        terminal_id=key.terminal_id,
        consumer_id=key.consumer_id,
    )


def revoke_key(session: Session, *, principal: Principal, key_id: str) -> ApiKey:
    """Platform admins revoke any key, merchant admins their merchant's, anyone their own."""
    key = session.get(ApiKey, key_id)
    allowed = key is not None and (
        principal.is_platform
        or key.id == principal.key_id
        or (principal.role is Role.MERCHANT_ADMIN and key.merchant_id == principal.merchant_id)
    )
    if not allowed or key is None:
        raise NotFound("no API key with this id")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        session.flush()
    return key


def revoke_keys_where(session: Session, **owner: str) -> int:
    """Revoke every live key of one owner (a staff member, a terminal, a merchant)."""
    statement = update(ApiKey).where(ApiKey.revoked_at.is_(None)).values(revoked_at=clock.now())
    for name, value in owner.items():
        statement = statement.where(getattr(ApiKey, name) == value)
    return session.execute(statement).rowcount


def has_platform_admin(session: Session) -> bool:
    query = select(ApiKey.id).where(ApiKey.role == Role.PLATFORM_ADMIN, ApiKey.revoked_at.is_(None))
    return session.scalar(query.limit(1)) is not None
