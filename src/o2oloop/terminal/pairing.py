"""Pairing a device with a terminal: once, by a short code a merchant admin shows.

The admin asks for a pairing code in the console (shown with a QR of the pairing link); a
phone or tablet at the counter opens the link, or types the code, within ten minutes. The
code works once: a conditional UPDATE lets only the first device through. The device then
holds a terminal API key in an HttpOnly cookie, so it stays signed in as that terminal; the
key is revoked with the terminal (deactivating a terminal or its store revokes its keys).

A code is 8 characters of the redemption-code alphabet (about 40 bits): it lives ten
minutes, is refused after one use, and only its keyed digest is stored.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth import service as keys
from o2oloop.auth.models import ApiKey, Role
from o2oloop.auth.principal import Principal, get_owned, require_merchant_admin
from o2oloop.codes.codec import ALPHABET
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput
from o2oloop.merchants.models import Merchant, Store, Terminal
from o2oloop.terminal.models import TerminalPairing

LIFETIME = timedelta(minutes=10)
LENGTH = 8


class PairingRefused(InvalidInput):
    """One answer for a wrong, expired or used code: nobody learns which."""

    slug, title = "pairing-refused", "Pairing refused"

    def __init__(self) -> None:
        super().__init__("this pairing code is not valid; ask for a new one in the console")


@dataclass(frozen=True)
class Pairing:
    """A pairing code just made: the code is shown once and never stored."""

    id: str
    terminal_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Paired:
    terminal: Terminal
    store: Store
    token: str  # the device's terminal key, for its cookie


_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", " ": None, "-": None})


def normalise(code: str) -> str:
    """What was typed (either case, dashes, look-alikes, fullwidth) -> the bare 8 characters."""
    text = unicodedata.normalize("NFKC", code[:40]).strip().upper().translate(_TYPED)
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        raise ValueError("not a pairing code")
    return text


def _digest(secret_key: str, code: str) -> str:
    return hmac.new(secret_key.encode(), b"o2oloop/pairing/" + code.encode(), "sha256").hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def start(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    terminal_id: str,
    secret_key: str,
    lifetime: timedelta = LIFETIME,
) -> Pairing:
    """A merchant admin's pairing code for one of their active terminals."""
    require_merchant_admin(principal, merchant_id)
    terminal = get_owned(session, Terminal, terminal_id, merchant_id=merchant_id, what="terminal")
    if not terminal.active:
        raise Conflict("this terminal is deactivated")
    code, now = _new_code(), clock.now()
    pairing = TerminalPairing(
        id=new_id("pair"),
        merchant_id=merchant_id,
        terminal_id=terminal.id,
        code_digest=_digest(secret_key, code.replace("-", "")),
        created_by=principal.staff_id or principal.key_id,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(pairing)
    session.flush()
    return Pairing(pairing.id, terminal.id, code, pairing.expires_at)


def complete(session: Session, *, code: str, secret_key: str, device: str = "") -> Paired:
    """The device's side: the first valid use of a live code pairs it; anything else is refused."""
    try:
        compact = normalise(code)
    except ValueError:
        raise PairingRefused() from None
    now = clock.now()
    pairing = session.scalar(
        select(TerminalPairing).where(TerminalPairing.code_digest == _digest(secret_key, compact))
    )
    if pairing is None or pairing.used_at is not None or now >= pairing.expires_at:
        raise PairingRefused()
    terminal = session.get(Terminal, pairing.terminal_id)
    store = session.get(Store, terminal.store_id) if terminal else None
    merchant = session.get(Merchant, pairing.merchant_id)
    if not (terminal and terminal.active and store and store.active and merchant):
        raise PairingRefused()
    if not merchant.active:
        raise PairingRefused()
    taken = session.execute(  # only one device can win a code
        update(TerminalPairing)
        .where(TerminalPairing.id == pairing.id, TerminalPairing.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise PairingRefused()
    key, token = keys.issue_key(
        session,
        role=Role.TERMINAL,
        label=f"paired device{': ' + device[:80] if device else ''}",
        merchant_id=terminal.merchant_id,
        store_id=terminal.store_id,
        terminal_id=terminal.id,
    )
    session.execute(
        update(TerminalPairing)
        .where(TerminalPairing.id == pairing.id)
        .values(api_key_id=key.id)
        .execution_options(synchronize_session=False)
    )
    return Paired(terminal=terminal, store=store, token=token)


def live_devices(session: Session, *, terminal_id: str) -> int:
    """How many paired devices hold a live key of this terminal."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .join(TerminalPairing, TerminalPairing.api_key_id == ApiKey.id)
            .where(TerminalPairing.terminal_id == terminal_id, ApiKey.revoked_at.is_(None))
        )
        or 0
    )


def paired_devices(
    session: Session, *, principal: Principal, merchant_id: str, terminal_id: str
) -> list[ApiKey]:
    """The live device keys of a terminal (for the console's terminal page)."""
    require_merchant_admin(principal, merchant_id)
    get_owned(session, Terminal, terminal_id, merchant_id=merchant_id, what="terminal")
    return list(
        session.scalars(
            select(ApiKey)
            .join(TerminalPairing, TerminalPairing.api_key_id == ApiKey.id)
            .where(TerminalPairing.terminal_id == terminal_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at)
        )
    )
